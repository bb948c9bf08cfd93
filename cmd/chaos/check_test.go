package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testConsumers is the consumers table of the committed manifests.
func testConsumers(t *testing.T) map[string][]string {
	t.Helper()
	consumers, err := loadConsumers(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return consumers
}

// The table read from the AsyncAPI manifests is the saga's, plus
// ops.journeys, which consumes every event of the other services.
func TestConsumersComeFromTheManifests(t *testing.T) {
	consumers := testConsumers(t)
	for typ, want := range map[string][]string{
		"sales.orders.order_placed":          {"finance.payments", "logistics.inventory", "logistics.shipments", "ops.journeys"},
		"sales.orders.order_confirmed":       {"crm.notifications", "logistics.shipments", "ops.journeys"},
		"logistics.inventory.stock_reserved": {"finance.payments", "ops.journeys"},
		"finance.payments.payment_captured":  {"ops.journeys", "sales.orders"},
		"crm.customers.customer_registered":  {"crm.notifications", "ops.journeys", "sales.orders"},
	} {
		if got := consumers[typ]; !slices.Equal(got, want) {
			t.Errorf("consumers of %s: %v, want %v", typ, got, want)
		}
	}
	if got := consumers["logistics.inventory.stock_replenished"]; !slices.Equal(got, []string{"ops.journeys"}) {
		t.Errorf("stock_replenished has consumers %v; only the journeys observe it", got)
	}
}

// world builds a small consistent platform state: five orders, one per
// path of the saga, with every event, resource, inbox entry and stock count
// the rules imply. Each call returns fresh values.
func world(t *testing.T) (snapshot, expectation) {
	t.Helper()
	consumers := testConsumers(t)
	s := snapshot{
		Orders: map[string]orderView{}, Reservations: map[string]reservationView{}, Stock: map[string]stockView{},
		Replenished: map[string]int64{"pA": 100}, Refills: map[string]int{"pA": 1},
		Inbox: map[string]map[string]bool{}, DeadLetters: map[string][]deadLetter{}, DeadLetterQueues: map[string][]deadLetter{},
	}
	e := expectation{
		Replenished: map[string]int64{"pA": 100}, Ambiguous: map[string]int64{},
		Products: []string{"pA", "pSold"}, Consumers: consumers,
	}
	n := 0
	emit := func(service, typ, subject string) {
		n++
		id := fmt.Sprintf("00000000-0000-0000-0000-%012d", n)
		s.Events = append(s.Events, event{Service: service, UUID: id, Type: typ, Subject: subject, Sent: true})
		for _, c := range consumers[typ] {
			if s.Inbox[c] == nil {
				s.Inbox[c] = map[string]bool{}
			}
			s.Inbox[c][id] = true
		}
	}
	emit("crm.customers", "crm.customers.customer_registered", "c1")
	emit("catalog.products", "catalog.products.product_added", "pA")
	emit("catalog.products", "catalog.products.product_added", "pSold")
	emit("logistics.inventory", "logistics.inventory.stock_replenished", "pA")

	type step struct{ service, name string }
	var (
		placed    = step{"sales.orders", "sales.orders.order_placed"}
		confirmed = step{"sales.orders", "sales.orders.order_confirmed"}
		cancelled = step{"sales.orders", "sales.orders.order_cancelled"}
		shipped   = step{"sales.orders", "sales.orders.order_shipped"}
		delivered = step{"sales.orders", "sales.orders.order_delivered"}
		reserved  = step{"logistics.inventory", "logistics.inventory.stock_reserved"}
		rejected  = step{"logistics.inventory", "logistics.inventory.stock_reservation_rejected"}
		released  = step{"logistics.inventory", "logistics.inventory.stock_released"}
		stShipped = step{"logistics.inventory", "logistics.inventory.stock_shipped"}
		captured  = step{"finance.payments", "finance.payments.payment_captured"}
		declined  = step{"finance.payments", "finance.payments.payment_declined"}
		refunded  = step{"finance.payments", "finance.payments.payment_refunded"}
		scheduled = step{"logistics.shipments", "logistics.shipments.shipment_scheduled"}
		shCancel  = step{"logistics.shipments", "logistics.shipments.shipment_cancelled"}
		shOut     = step{"logistics.shipments", "logistics.shipments.shipment_dispatched"}
		shIn      = step{"logistics.shipments", "logistics.shipments.shipment_delivered"}
	)
	add := func(x orderExpect, o orderView, r reservationView, pay *paymentView, ship *shipmentView, steps ...step) {
		e.Orders = append(e.Orders, x)
		o.ID = x.ID
		s.Orders[x.ID] = o
		r.OrderID = x.ID
		s.Reservations[x.ID] = r
		if pay != nil {
			pay.OrderID = x.ID
			s.Payments = append(s.Payments, *pay)
		}
		if ship != nil {
			ship.OrderID = x.ID
			s.Shipments = append(s.Shipments, *ship)
		}
		for _, st := range steps {
			emit(st.service, st.name, x.ID)
		}
	}
	add(orderExpect{N: 1, Plan: planConfirm, ID: "o1"},
		orderView{Status: "confirmed", PaymentID: "pay1", ShipmentID: "sh1", Lines: map[string]int64{"pA": 2}},
		reservationView{Status: "held", Lines: map[string]int64{"pA": 2}},
		&paymentView{ID: "pay1", Status: "captured"}, &shipmentView{ID: "sh1", Status: "scheduled"},
		placed, reserved, captured, confirmed, scheduled)
	add(orderExpect{N: 2, Plan: planDecline, ID: "o2"},
		orderView{Status: "cancelled", Reason: "payment_declined", PaymentID: "pay2", Lines: map[string]int64{"pA": 1}},
		reservationView{Status: "released", Lines: map[string]int64{"pA": 1}},
		&paymentView{ID: "pay2", Status: "declined"}, nil,
		placed, reserved, declined, cancelled, released)
	add(orderExpect{N: 3, Plan: planSoldOut, ID: "o3"},
		orderView{Status: "cancelled", Reason: "out_of_stock", Lines: map[string]int64{"pSold": 1}},
		reservationView{Status: "rejected", Reason: "out_of_stock", Lines: map[string]int64{"pSold": 1}},
		nil, nil,
		placed, rejected, cancelled)
	add(orderExpect{N: 4, Plan: planCancelLate, ID: "o4", Cancel: accepted},
		orderView{Status: "cancelled", Reason: "customer_requested", PaymentID: "pay4", ShipmentID: "sh4", Lines: map[string]int64{"pA": 3}},
		reservationView{Status: "released", Lines: map[string]int64{"pA": 3}},
		&paymentView{ID: "pay4", Status: "refunded"}, &shipmentView{ID: "sh4", Status: "cancelled"},
		placed, reserved, captured, confirmed, scheduled, cancelled, released, refunded, shCancel)
	add(orderExpect{N: 5, Plan: planDeliver, ID: "o5", Dispatch: accepted, Deliver: accepted},
		orderView{Status: "delivered", PaymentID: "pay5", ShipmentID: "sh5", Lines: map[string]int64{"pA": 4}},
		reservationView{Status: "shipped", Lines: map[string]int64{"pA": 4}},
		&paymentView{ID: "pay5", Status: "captured"}, &shipmentView{ID: "sh5", Status: "delivered"},
		placed, reserved, captured, confirmed, scheduled, shOut, stShipped, shipped, shIn, delivered)

	// The confirmed order holds 2 units of pA; 4 left with the delivered order.
	s.Stock["pA"] = stockView{Available: 94, Reserved: 2, Shipped: 4, Replenished: 100}
	s.Stock["pSold"] = stockView{}
	// crm.notifications: one notification per life-cycle event of each order.
	for _, ev := range s.Events {
		if kind, ok := notificationKinds[ev.Type]; ok {
			s.Notifications = append(s.Notifications, notificationView{ID: "n-" + ev.UUID, OrderID: ev.Subject, Kind: kind, Status: "not_sent"})
		}
	}
	return s, e
}

func TestCheckAcceptsAConsistentWorld(t *testing.T) {
	s, e := world(t)
	r := check(s, e)
	if len(r.Violations) > 0 {
		t.Fatalf("violations in a consistent world:\n%v", r.Violations)
	}
	if r.Orders != 5 || r.DeadLettered != 0 {
		t.Fatalf("report %+v", r)
	}

	// Poison messages dead-lettered by every consumer of their type, with
	// their reason, are expected, and counted.
	e.Poison = []deadLetter{{MessageID: "poison-1", Type: "sales.orders.order_placed", Reason: "not a JSON object"}}
	for _, svc := range e.Consumers["sales.orders.order_placed"] {
		s.DeadLetters[svc] = []deadLetter{{MessageID: "poison-1", Type: "sales.orders.order_placed", Reason: "malformed: payload is not a JSON object", Status: "archived"}}
	}
	// A dead letter retried and handled (resolved) is accounted for, not counted.
	s.DeadLetters["finance.payments"] = append(s.DeadLetters["finance.payments"],
		deadLetter{MessageID: "m1", Type: "logistics.inventory.stock_reserved", Reason: "permanent: injected", Status: "resolved"})
	r = check(s, e)
	if len(r.Violations) > 0 || r.DeadLettered != len(e.Consumers["sales.orders.order_placed"]) {
		t.Fatalf("with poison dead-lettered as expected: %+v", r)
	}
}

func TestCheckFindsEveryViolation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *snapshot, e *expectation)
		kind   string
		want   string // a substring of the violation
	}{
		{"order stuck pending", func(s *snapshot, e *expectation) {
			o := s.Orders["o1"]
			o.Status = "pending"
			s.Orders["o1"] = o
		}, kindLost, "o1 (#1, confirm, ) still pending"},
		{"acknowledged order unknown to orders", func(s *snapshot, e *expectation) {
			delete(s.Orders, "o2")
		}, kindLost, "acknowledged with 201 but unknown"},
		{"order never acknowledged", func(s *snapshot, e *expectation) {
			e.Orders = append(e.Orders, orderExpect{N: 6, Plan: planConfirm, PlaceErr: "no 201 within 5m"})
		}, kindLost, "never acknowledged"},
		{"an order nobody asked for", func(s *snapshot, e *expectation) {
			s.Orders["o9"] = orderView{ID: "o9", Status: "confirmed"}
		}, kindDuplicate, "order o9 exists but"},
		{"refunded twice", func(s *snapshot, e *expectation) {
			s.Events = append(s.Events, event{Service: "finance.payments", UUID: "dup-refund", Type: "finance.payments.payment_refunded", Subject: "o4", Sent: true})
		}, kindDuplicate, "payment_refunded published 2 times"},
		{"charged twice", func(s *snapshot, e *expectation) {
			s.Payments = append(s.Payments, paymentView{ID: "pay1b", OrderID: "o1", Status: "captured"})
		}, kindDuplicate, "o1 (#1, confirm, ): 2 payments"},
		{"captured payment of a cancelled order not refunded", func(s *snapshot, e *expectation) {
			var kept []event
			for _, ev := range s.Events {
				if !(ev.Subject == "o4" && ev.Type == "finance.payments.payment_refunded") {
					kept = append(kept, ev)
				}
			}
			s.Events = kept
			for i := range s.Payments {
				if s.Payments[i].OrderID == "o4" {
					s.Payments[i].Status = "captured"
				}
			}
		}, kindInvariant, "captured payment pay4 of a cancelled order"},
		{"stock off by one", func(s *snapshot, e *expectation) {
			s.Stock["pA"] = stockView{Available: 95, Reserved: 2, Shipped: 4, Replenished: 100}
		}, kindInvariant, "available 95, want replenished 100"},
		{"shipped stock not counted down", func(s *snapshot, e *expectation) {
			s.Stock["pA"] = stockView{Available: 94, Reserved: 6, Replenished: 100}
		}, kindInvariant, "product pA: reserved 6, held by reservations 2, in confirmed orders 2"},
		{"reservation of a delivered order still held", func(s *snapshot, e *expectation) {
			r := s.Reservations["o5"]
			r.Status = "held"
			s.Reservations["o5"] = r
		}, kindInvariant, "delivered, but its reservation is held"},
		{"negative stock", func(s *snapshot, e *expectation) {
			s.Stock["pSold"] = stockView{Available: -1}
		}, kindInvariant, "negative stock"},
		{"reservation held for a cancelled order", func(s *snapshot, e *expectation) {
			r := s.Reservations["o2"]
			r.Status = "held"
			s.Reservations["o2"] = r
			s.Stock["pA"] = stockView{Available: 93, Reserved: 3, Shipped: 4, Replenished: 100}
		}, kindInvariant, "product pA: reserved 3, held by reservations 3, in confirmed orders 2"},
		{"replenishment lost", func(s *snapshot, e *expectation) {
			e.Replenished["pA"] = 110
		}, kindLost, "110 units replenished with 201, inventory counts 100"},
		{"shipment without a confirmed order", func(s *snapshot, e *expectation) {
			s.Shipments = append(s.Shipments, shipmentView{ID: "sh3", OrderID: "o3", Status: "scheduled"})
		}, kindInvariant, "shipment sh3 without order_confirmed"},
		{"two notifications for one event", func(s *snapshot, e *expectation) {
			s.Notifications = append(s.Notifications, notificationView{ID: "n-twice", OrderID: "o5", Kind: "order_delivered", Status: "sent"})
		}, kindDuplicate, "order o5: 2 notifications order_delivered"},
		{"notification lost", func(s *snapshot, e *expectation) {
			for i, n := range s.Notifications {
				if n.OrderID == "o4" && n.Kind == "payment_refunded" {
					s.Notifications = append(s.Notifications[:i], s.Notifications[i+1:]...)
					break
				}
			}
		}, kindLost, "order o4: finance.payments.payment_refunded published, but no notification payment_refunded"},
		{"notification without its event", func(s *snapshot, e *expectation) {
			s.Notifications = append(s.Notifications, notificationView{ID: "n-ghost", OrderID: "o3", Kind: "order_shipped", Status: "sent"})
		}, kindInvariant, "order o3: notification order_shipped n-ghost without sales.orders.order_shipped"},
		{"notification still pending", func(s *snapshot, e *expectation) {
			s.Notifications[0].Status, s.Notifications[0].Reason = "pending", "waiting for the customer's e-mail address"
		}, kindLost, "still pending"},
		{"outbox row never published", func(s *snapshot, e *expectation) {
			s.Events[len(s.Events)-1].Sent = false
		}, kindLost, "never published"},
		{"event never handled by a consumer", func(s *snapshot, e *expectation) {
			for _, ev := range s.Events {
				if ev.Subject == "o2" && ev.Type == "sales.orders.order_placed" {
					delete(s.Inbox["finance.payments"], ev.UUID)
				}
			}
		}, kindLost, "never handled by finance.payments"},
		{"event handled that nobody published", func(s *snapshot, e *expectation) {
			s.Inbox["sales.orders"]["ghost"] = true
		}, kindInvariant, "handled event ghost, which no outbox holds"},
		{"unexpected dead letter", func(s *snapshot, e *expectation) {
			s.DeadLetters["finance.payments"] = []deadLetter{{MessageID: "m1", Type: "logistics.inventory.stock_reserved", Reason: "handler failed 5 times"}}
		}, kindLost, "unexpected dead letter in finance.payments"},
		{"poison message not dead-lettered by a consumer", func(s *snapshot, e *expectation) {
			e.Poison = []deadLetter{{MessageID: "poison-1", Type: "sales.orders.order_placed", Reason: "not a JSON object"}}
			s.DeadLetters["logistics.inventory"] = []deadLetter{{MessageID: "poison-1", Type: "sales.orders.order_placed", Reason: "payload is not a JSON object"}}
		}, kindInvariant, "is not in the failed messages of finance.payments"},
		{"dead letter left in a dead-letter queue", func(s *snapshot, e *expectation) {
			s.DeadLetterQueues["finance.payments"] = []deadLetter{{MessageID: "m1", Type: "logistics.inventory.stock_reserved", Reason: "handler failed 5 times"}}
		}, kindLost, "left in the dead-letter queue of finance.payments"},
		{"retried message neither handled nor dead-lettered", func(s *snapshot, e *expectation) {
			s.DeadLetters["finance.payments"] = []deadLetter{{MessageID: "m1", Type: "logistics.inventory.stock_reserved", Reason: "permanent: x", Status: "retrying"}}
		}, kindLost, "was retried but neither handled nor dead-lettered again"},
		{"dead letter without a reason", func(s *snapshot, e *expectation) {
			e.Poison = []deadLetter{{MessageID: "poison-1", Type: "sales.orders.order_placed"}}
			for _, svc := range e.Consumers["sales.orders.order_placed"] {
				s.DeadLetters[svc] = []deadLetter{{MessageID: "poison-1", Type: "sales.orders.order_placed"}}
			}
		}, kindInvariant, "has no reason"},
		{"cancellation accepted but order confirmed", func(s *snapshot, e *expectation) {
			e.Orders[0].Cancel = accepted
		}, kindInvariant, "cancellation accepted (200) but the order is confirmed"},
		{"declined card but confirmed", func(s *snapshot, e *expectation) {
			e.Orders[0].Plan = planDecline
		}, kindInvariant, "paid with tok_decline, but the order is confirmed"},
		{"order confirmed twice", func(s *snapshot, e *expectation) {
			s.Events = append(s.Events, event{Service: "sales.orders", UUID: "dup-confirm", Type: "sales.orders.order_confirmed", Subject: "o1", Sent: true})
			s.Inbox["logistics.shipments"]["dup-confirm"] = true
		}, kindDuplicate, "order_confirmed published 2 times"},
		{"both reserved and rejected", func(s *snapshot, e *expectation) {
			s.Events = append(s.Events, event{Service: "logistics.inventory", UUID: "rej", Type: "logistics.inventory.stock_reservation_rejected", Subject: "o1", Sent: true})
			s.Inbox["sales.orders"]["rej"] = true
		}, kindDuplicate, "both stock_reserved and stock_reservation_rejected"},
		{"delivered without order_shipped", func(s *snapshot, e *expectation) {
			var kept []event
			for _, ev := range s.Events {
				if !(ev.Subject == "o5" && ev.Type == "sales.orders.order_shipped") {
					kept = append(kept, ev)
				}
			}
			s.Events = kept
		}, kindInvariant, "is delivered but its events are"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, e := world(t)
			tt.mutate(&s, &e)
			r := check(s, e)
			for _, v := range r.Violations {
				if v.Kind == tt.kind && strings.Contains(v.What, tt.want) {
					return
				}
			}
			t.Fatalf("no %s violation containing %q; got:\n%v", tt.kind, tt.want, r.Violations)
		})
	}
}

func TestSubject(t *testing.T) {
	tests := map[string]string{
		`{"uuid":"u","fired_at":"f","order":{"id":"o1","customer_id":"c1"}}`:          "o1",
		`{"uuid":"u","fired_at":"f","reservation":{"order_id":"o2","status":"held"}}`: "o2",
		`{"uuid":"u","fired_at":"f","payment":{"id":"pay","order_id":"o3"}}`:          "o3",
		`{"uuid":"u","fired_at":"f","stock":{"product_id":"p1","available":3}}`:       "p1",
		`{"uuid":"u","fired_at":"f","customer":{"id":"c9","email":"x@example.com"}}`:  "c9",
		`not json`: "",
	}
	for body, want := range tests {
		if got := subject([]byte(body)); got != want {
			t.Errorf("subject(%s) = %q, want %q", body, got, want)
		}
	}
}
