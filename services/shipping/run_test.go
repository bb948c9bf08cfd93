package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/testinfra/servicetest"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipmentevents"
)

var addr = orderevents.Address{Name: "Grace Hopper", Line1: "1 Navy Way", PostalCode: "20001", City: "Washington", Country: "US"}

// TestRun drives the service through the real broker: scheduled once (events delivered twice),
// dispatched and delivered through the API, and a cancellation.
func TestRun(t *testing.T) {
	h := servicetest.Start(t, run, shipmentevents.Service)
	ctx := context.Background()

	h.Publish(orderevents.OrderPlaced.New(ctx, orderevents.Order{ID: "o1", Status: "pending", ShippingAddress: addr}))
	c, err := orderevents.OrderConfirmed.New(ctx, orderevents.Order{ID: "o1", Status: "confirmed", ShippingAddress: addr})
	h.Publish(c, err)
	h.Publish(c, err)
	var sh shipmentevents.Shipment
	if err := json.Unmarshal(h.WaitEvent(shipmentevents.ShipmentScheduled.Type(), "shipment", nil), &sh); err != nil {
		t.Fatal(err)
	}
	if sh.OrderID != "o1" || sh.Address.City != "Washington" || sh.Status != "scheduled" {
		t.Fatalf("shipment_scheduled %+v", sh)
	}

	if code, body := h.Do("PATCH", "/v1/shipments/"+sh.ID, `{"status":"dispatched"}`, "If-Match", `"1"`); code != 200 {
		t.Fatalf("dispatch: %d %s", code, body)
	}
	h.WaitEvent(shipmentevents.ShipmentDispatched.Type(), "shipment", nil)
	if code, _ := h.Do("PATCH", "/v1/shipments/"+sh.ID, `{"status":"delivered"}`, "If-Match", `"1"`); code != 412 {
		t.Fatalf("stale If-Match: %d", code)
	}
	if code, body := h.Do("PATCH", "/v1/shipments/"+sh.ID, `{"status":"delivered"}`, "If-Match", `"2"`); code != 200 {
		t.Fatalf("deliver: %d %s", code, body)
	}
	h.WaitEvent(shipmentevents.ShipmentDelivered.Type(), "shipment", nil)

	h.Publish(orderevents.OrderConfirmed.New(ctx, orderevents.Order{ID: "o2", Status: "confirmed", ShippingAddress: addr}))
	h.WaitEvent(shipmentevents.ShipmentScheduled.Type(), "shipment", nil)
	x, err := orderevents.OrderCancelled.New(ctx, orderevents.Order{ID: "o2", Status: "cancelled"})
	h.Publish(x, err)
	h.Publish(x, err)
	h.WaitEvent(shipmentevents.ShipmentCancelled.Type(), "shipment", nil)

	if n := h.CountEvents(shipmentevents.ShipmentScheduled.Type(), 500*time.Millisecond); n != 0 {
		t.Fatalf("%d more shipment_scheduled", n)
	}
	if n := h.CountEvents(shipmentevents.ShipmentCancelled.Type(), 0); n != 0 {
		t.Fatalf("%d more shipment_cancelled", n)
	}
	var list struct {
		Total int `json:"total"`
	}
	h.GetJSON("/v1/shipments?status=cancelled", &list)
	if list.Total != 1 {
		t.Fatalf("%d cancelled shipments", list.Total)
	}
}
