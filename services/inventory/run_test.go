package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/testinfra/servicetest"
	"github.com/sagittarius-a/sagittarius/services/catalog/productevents"
	"github.com/sagittarius-a/sagittarius/services/inventory/stockevents"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
)

// TestRun drives the service through the real broker: the product read model, a replenishment
// through the API, a reservation (order_placed delivered twice), a rejection and a release
// (order_cancelled delivered twice).
func TestRun(t *testing.T) {
	h := servicetest.Start(t, run, stockevents.Service)
	ctx := context.Background()

	h.Publish(productevents.ProductAdded.New(ctx, productevents.Product{ID: "p1", Name: "Lamp", Status: "active"}))
	h.Eventually("product known", func() bool { code, _ := h.Do("GET", "/v1/stock-items/p1", ""); return code == 200 })

	code, body := h.Do("POST", "/v1/stock-items/p1/replenishments", `{"quantity":2}`)
	if code != 201 {
		t.Fatalf("replenish: %d %s", code, body)
	}
	h.WaitEvent(stockevents.StockReplenished.Type(), "stock", nil)

	placed, err := orderevents.OrderPlaced.New(ctx, orderevents.Order{ID: "o1", Status: "pending",
		Lines: []orderevents.Line{{ProductID: "p1", Quantity: 2}}})
	h.Publish(placed, err)
	h.Publish(placed, err) // redelivered
	var res stockevents.Reservation
	if err := json.Unmarshal(h.WaitEvent(stockevents.StockReserved.Type(), "reservation", nil), &res); err != nil {
		t.Fatal(err)
	}
	if res.OrderID != "o1" || res.Status != "held" || res.Links.Href("self") != "http://gw.test/inventory/v1/reservations/o1" {
		t.Fatalf("stock_reserved %+v", res)
	}
	var stock stockevents.Stock
	h.GetJSON("/v1/stock-items/p1", &stock)
	if stock.Available != 0 || stock.Reserved != 2 {
		t.Fatalf("stock after reservation: %+v", stock)
	}

	h.Publish(orderevents.OrderPlaced.New(ctx, orderevents.Order{ID: "o2", Lines: []orderevents.Line{{ProductID: "p1", Quantity: 1}}}))
	if err := json.Unmarshal(h.WaitEvent(stockevents.StockReservationRejected.Type(), "reservation", nil), &res); err != nil {
		t.Fatal(err)
	}
	if res.OrderID != "o2" || res.Reason != "out_of_stock" || len(res.RejectedLines) != 1 {
		t.Fatalf("stock_reservation_rejected %+v", res)
	}

	cancelled, err := orderevents.OrderCancelled.New(ctx, orderevents.Order{ID: "o1", Status: "cancelled"})
	h.Publish(cancelled, err)
	h.Publish(cancelled, err)
	h.WaitEvent(stockevents.StockReleased.Type(), "reservation", nil)
	h.GetJSON("/v1/stock-items/p1", &stock)
	if stock.Available != 2 || stock.Reserved != 0 {
		t.Fatalf("stock after release: %+v", stock)
	}
	if n := h.CountEvents(stockevents.StockReserved.Type(), 500*time.Millisecond); n != 0 {
		t.Fatalf("%d more stock_reserved after a duplicate delivery", n)
	}
	if n := h.CountEvents(stockevents.StockReleased.Type(), 0); n != 0 {
		t.Fatalf("%d more stock_released after a duplicate delivery", n)
	}
	var list struct {
		Total int `json:"total"`
	}
	h.GetJSON("/v1/reservations", &list)
	if list.Total != 2 {
		t.Fatalf("%d reservations", list.Total)
	}
}
