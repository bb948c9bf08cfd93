package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipmentevents"
)

var addr = orderevents.Address{Name: "Grace Hopper", Line1: "1 Navy Way", PostalCode: "20001", City: "Washington", Country: "US"}

// TestRun drives the service through the real broker: scheduled once (events delivered twice),
// dispatched and delivered through the API, and a cancellation.
func TestRun(t *testing.T) {
	h := startService(t, run, shipmentevents.Service)
	ctx := context.Background()

	h.publish(orderevents.OrderPlaced.New(ctx, orderevents.Order{ID: "o1", Status: "pending", ShippingAddress: addr}))
	c, err := orderevents.OrderConfirmed.New(ctx, orderevents.Order{ID: "o1", Status: "confirmed", ShippingAddress: addr})
	h.publish(c, err)
	h.publish(c, err)
	var sh shipmentevents.Shipment
	if err := json.Unmarshal(h.waitEvent(shipmentevents.ShipmentScheduled.Type(), "shipment", nil), &sh); err != nil {
		t.Fatal(err)
	}
	if sh.OrderID != "o1" || sh.Address.City != "Washington" || sh.Status != "scheduled" {
		t.Fatalf("shipment_scheduled %+v", sh)
	}

	if code, body := h.do("PATCH", "/v1/shipments/"+sh.ID, `{"status":"dispatched"}`, "If-Match", `"1"`); code != 200 {
		t.Fatalf("dispatch: %d %s", code, body)
	}
	h.waitEvent(shipmentevents.ShipmentDispatched.Type(), "shipment", nil)
	if code, _ := h.do("PATCH", "/v1/shipments/"+sh.ID, `{"status":"delivered"}`, "If-Match", `"1"`); code != 412 {
		t.Fatalf("stale If-Match: %d", code)
	}
	if code, body := h.do("PATCH", "/v1/shipments/"+sh.ID, `{"status":"delivered"}`, "If-Match", `"2"`); code != 200 {
		t.Fatalf("deliver: %d %s", code, body)
	}
	h.waitEvent(shipmentevents.ShipmentDelivered.Type(), "shipment", nil)

	h.publish(orderevents.OrderConfirmed.New(ctx, orderevents.Order{ID: "o2", Status: "confirmed", ShippingAddress: addr}))
	h.waitEvent(shipmentevents.ShipmentScheduled.Type(), "shipment", nil)
	x, err := orderevents.OrderCancelled.New(ctx, orderevents.Order{ID: "o2", Status: "cancelled"})
	h.publish(x, err)
	h.publish(x, err)
	h.waitEvent(shipmentevents.ShipmentCancelled.Type(), "shipment", nil)

	if n := h.countEvents(shipmentevents.ShipmentScheduled.Type(), 500*time.Millisecond); n != 0 {
		t.Fatalf("%d more shipment_scheduled", n)
	}
	if n := h.countEvents(shipmentevents.ShipmentCancelled.Type(), 0); n != 0 {
		t.Fatalf("%d more shipment_cancelled", n)
	}
	var list struct {
		Total int `json:"total"`
	}
	h.getJSON("/v1/shipments?status=cancelled", &list)
	if list.Total != 1 {
		t.Fatalf("%d cancelled shipments", list.Total)
	}
}
