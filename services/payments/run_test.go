package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/testinfra/servicetest"
	"github.com/sagittarius-a/sagittarius/services/inventory/stockevents"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
	"github.com/sagittarius-a/sagittarius/services/payments/paymentevents"
)

// placed is an order of customer c1 paying with the method methodID.
func placed(id, methodID string) orderevents.Order {
	return orderevents.Order{ID: id, CustomerID: "c1", Status: "pending", PaymentMethodID: methodID, Total: orderevents.Money{Amount: 4200, Currency: "EUR"}}
}

// method registers a payment method of customer c1 with token through the
// API (as staff) and returns its id.
func method(t *testing.T, h *servicetest.Service, token string) string {
	t.Helper()
	code, body := h.Do("POST", "/v1/payment-methods", `{"token":"`+token+`","customer_id":"c1"}`)
	var m struct{ ID string }
	if err := json.Unmarshal(body, &m); code != 201 || err != nil || m.ID == "" {
		t.Fatalf("register %s: %d %s", token, code, body)
	}
	return m.ID
}

// TestRun drives the service through the real broker: capture (every event delivered twice),
// refund once, and a declined card.
func TestRun(t *testing.T) {
	h := servicetest.Start(t, run, paymentevents.Service)
	ctx := context.Background()

	visa, decline := method(t, h, "tok_visa"), method(t, h, "tok_decline")
	p, err := orderevents.OrderPlaced.New(ctx, placed("o1", visa))
	h.Publish(p, err)
	h.Publish(p, err)
	r, err := stockevents.StockReserved.New(ctx, stockevents.Reservation{OrderID: "o1", Status: "held"})
	h.Publish(r, err)
	h.Publish(r, err)
	var pay paymentevents.Payment
	if err := json.Unmarshal(h.WaitEvent(paymentevents.PaymentCaptured.Type(), "payment", nil), &pay); err != nil {
		t.Fatal(err)
	}
	if pay.OrderID != "o1" || pay.Amount.Amount != 4200 || pay.Status != "captured" {
		t.Fatalf("payment_captured %+v", pay)
	}

	c, err := orderevents.OrderCancelled.New(ctx, orderevents.Order{ID: "o1", Status: "cancelled"})
	h.Publish(c, err)
	h.Publish(c, err)
	h.WaitEvent(paymentevents.PaymentRefunded.Type(), "payment", nil)
	var got paymentevents.Payment
	h.GetJSON("/v1/payments/"+pay.ID, &got)
	if got.Status != "refunded" || got.RefundedAt == nil {
		t.Fatalf("payment after refund %+v", got)
	}

	h.Publish(orderevents.OrderPlaced.New(ctx, placed("o2", decline)))
	h.Publish(stockevents.StockReserved.New(ctx, stockevents.Reservation{OrderID: "o2", Status: "held"}))
	if err := json.Unmarshal(h.WaitEvent(paymentevents.PaymentDeclined.Type(), "payment", nil), &pay); err != nil {
		t.Fatal(err)
	}
	if pay.OrderID != "o2" || pay.Reason != "card_declined" {
		t.Fatalf("payment_declined %+v", pay)
	}

	if n := h.CountEvents(paymentevents.PaymentCaptured.Type(), 500*time.Millisecond); n != 0 {
		t.Fatalf("%d more captures", n)
	}
	if n := h.CountEvents(paymentevents.PaymentRefunded.Type(), 0); n != 0 {
		t.Fatalf("%d more refunds", n)
	}
	var list struct {
		Total int `json:"total"`
	}
	h.GetJSON("/v1/payments?order_id=o1", &list)
	if list.Total != 1 {
		t.Fatalf("%d payments of o1", list.Total)
	}
}
