package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/testinfra/servicetest"
	"github.com/sagittarius-a/sagittarius/services/customers/customerevents"
	"github.com/sagittarius-a/sagittarius/services/notifications/mailer/smtptest"
	"github.com/sagittarius-a/sagittarius/services/notifications/notificationevents"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
	"github.com/sagittarius-a/sagittarius/services/payments/paymentevents"
)

type page struct {
	Total    int                                          `json:"total"`
	Embedded map[string][]notificationevents.Notification `json:"_embedded"`
}

// notifications returns the customer's notifications by kind, through the API.
func notifications(t *testing.T, s *servicetest.Service, customerID string) map[string]notificationevents.Notification {
	t.Helper()
	var p page
	s.GetJSON("/v1/notifications?size=100&customer_id="+customerID, &p)
	out := map[string]notificationevents.Notification{}
	for _, n := range p.Embedded["notifications"] {
		out[n.OrderID+"/"+n.Kind] = n
	}
	if len(out) != len(p.Embedded["notifications"]) {
		t.Fatalf("two notifications of one order and kind: %+v", p.Embedded["notifications"])
	}
	return out
}

func order(id, customer string) orderevents.Order {
	return orderevents.Order{ID: id, CustomerID: customer, Total: orderevents.Money{Amount: 4200, Currency: "EUR"}}
}

// TestRunSendsThroughSMTP drives the service through the real broker and
// database with a real SMTP conversation (an in-test server): events that
// arrive before their customer, twice, or republished with a new uuid give
// one notification each, sent once, after the commit; a refusing server
// gives failed and a retry.
func TestRunSendsThroughSMTP(t *testing.T) {
	smtp := smtptest.Start(t)
	s := servicetest.Start(t, run, notificationevents.Service, "SMTP_ADDR="+smtp.Addr, "SMTP_FROM=Shop <shop@example.com>")
	ctx := context.Background()

	// order_confirmed before the customer is known: pending, waiting for the address.
	confirmed, err := orderevents.OrderConfirmed.New(ctx, order("o1", "c1"))
	s.Publish(confirmed, err)
	s.Eventually("o1's notification recorded", func() bool { _, ok := notifications(t, s, "c1")["o1/order_confirmed"]; return ok })
	n := notifications(t, s, "c1")["o1/order_confirmed"]
	if n.Status != "pending" || n.Recipient != "" || n.Reason != "waiting for the customer's e-mail address" || n.EventID != confirmed.ID {
		t.Fatalf("before the customer: %+v", n)
	}
	if n.Links.Href("customer") != "http://gw.test/customers/v1/customers/c1" || n.Links.Href("order") != "http://gw.test/orders/v1/orders/o1" {
		t.Fatalf("links %+v", n.Links)
	}

	registered, err := customerevents.CustomerRegistered.New(ctx, customerevents.Customer{ID: "c1", Email: "ann@example.com", Name: "Ann", Status: "active", Version: 1})
	s.Publish(registered, err)
	var sent notificationevents.Notification
	if err := json.Unmarshal(s.WaitEvent(notificationevents.NotificationSent.Type(), "notification", nil), &sent); err != nil {
		t.Fatal(err)
	}
	if sent.OrderID != "o1" || sent.Status != "sent" || sent.Recipient != "ann@example.com" || sent.SentAt == nil {
		t.Fatalf("notification_sent %+v", sent)
	}
	msgs := smtp.Messages()
	if len(msgs) != 1 || msgs[0].To[0] != "ann@example.com" || msgs[0].From != "shop@example.com" ||
		!strings.Contains(msgs[0].Data, "Subject: Your order #o1 is confirmed") {
		t.Fatalf("SMTP received %+v", msgs)
	}

	// Twice, and republished with a new uuid: still one notification, one message.
	s.Publish(confirmed, err)
	s.Publish(orderevents.OrderConfirmed.New(ctx, order("o1", "c1")))
	// The other steps, a cancellation with its reason, and a refund whose order is not known yet.
	s.Publish(orderevents.OrderShipped.New(ctx, order("o1", "c1")))
	s.Publish(orderevents.OrderDelivered.New(ctx, order("o1", "c1")))
	s.Publish(paymentevents.PaymentRefunded.New(ctx, paymentevents.Payment{ID: "p2", OrderID: "o2", Amount: paymentevents.Money{Amount: 1999, Currency: "EUR"}}))
	cancelled := order("o2", "c1")
	cancelled.CancellationReason = "out_of_stock"
	s.Publish(orderevents.OrderCancelled.New(ctx, cancelled))

	want := []string{"o1/order_confirmed", "o1/order_shipped", "o1/order_delivered", "o2/order_cancelled", "o2/payment_refunded"}
	s.Eventually("every notification sent", func() bool {
		ns := notifications(t, s, "c1")
		for _, k := range want {
			if ns[k].Status != "sent" {
				return false
			}
		}
		return len(ns) == len(want)
	})
	if n := s.CountEvents(notificationevents.NotificationSent.Type(), time.Second); n != len(want)-1 {
		t.Fatalf("%d more notification_sent, want %d", n, len(want)-1)
	}
	msgs = smtp.Messages()
	if len(msgs) != len(want) {
		t.Fatalf("%d messages sent, want %d (one per notification)", len(msgs), len(want))
	}
	ns := notifications(t, s, "c1")
	if !strings.Contains(ns["o2/order_cancelled"].Text, "some of its items are out of stock") ||
		!strings.Contains(ns["o2/payment_refunded"].Text, "19.99 EUR") || ns["o2/payment_refunded"].CustomerID != "c1" {
		t.Fatalf("texts: %+v", ns)
	}

	// A server that refuses: failed with the reason, then sent on a later attempt.
	smtp.SetMode(smtptest.RefuseMail)
	s.Publish(orderevents.OrderConfirmed.New(ctx, order("o3", "c1")))
	s.Eventually("o3 failed", func() bool { return notifications(t, s, "c1")["o3/order_confirmed"].Status == "failed" })
	failed := notifications(t, s, "c1")["o3/order_confirmed"]
	if !strings.Contains(failed.Reason, "451") || failed.NextAttemptAt == nil || failed.Attempts != 1 {
		t.Fatalf("failed: %+v", failed)
	}
	smtp.SetMode(smtptest.Accept)
	s.Eventually("o3 sent on retry", func() bool { return notifications(t, s, "c1")["o3/order_confirmed"].Status == "sent" })
	if got := notifications(t, s, "c1")["o3/order_confirmed"]; got.Attempts != 2 || len(smtp.Messages()) != len(want)+1 {
		t.Fatalf("after the retry: %+v, %d messages", got, len(smtp.Messages()))
	}

	// The API: filters, paging, 404, bad queries.
	var p page
	s.GetJSON("/v1/notifications?status=sent&size=2", &p)
	if p.Total != len(want)+1 || len(p.Embedded["notifications"]) != 2 {
		t.Fatalf("sent, page 1 of 2: %+v", p)
	}
	for path, code := range map[string]int{
		"/v1/notifications/" + ns["o1/order_confirmed"].ID:       200,
		"/v1/notifications/00000000-0000-0000-0000-000000000000": 404,
		"/v1/notifications/nope":                                 404,
		"/v1/notifications?status=lost":                          400,
		"/v1/notifications?customer_id=a&customer_id=b":          400,
		"/v1/notifications?size=0":                               400,
	} {
		if got, body := s.Do("GET", path, ""); got != code {
			t.Errorf("GET %s: %d %s, want %d", path, got, body, code)
		}
	}

	// The root links the service's failed messages (the kit's routes).
	var root struct {
		Links map[string]struct{ Href string } `json:"_links"`
	}
	s.GetJSON("/v1", &root)
	if got, want := root.Links["failed-messages"].Href, "http://gw.test/notifications/v1/failed-messages"; got != want {
		t.Errorf("root: failed-messages %q, want %q", got, want)
	}
	if code, body := s.Do("GET", "/v1/failed-messages", "", "Authorization", "Bearer "+s.Issuer.Operator()); code != http.StatusOK {
		t.Errorf("GET /v1/failed-messages: %d %s", code, body)
	}
}

// TestRunWithoutSMTP: without SMTP_ADDR nothing is sent; the notification is
// recorded as not_sent and says why; a removed customer's are never sent.
func TestRunWithoutSMTP(t *testing.T) {
	s := servicetest.Start(t, run, notificationevents.Service)
	ctx := context.Background()
	s.Publish(customerevents.CustomerRegistered.New(ctx, customerevents.Customer{ID: "c1", Email: "ann@example.com", Version: 1}))
	s.Publish(orderevents.OrderConfirmed.New(ctx, order("o1", "c1")))
	s.Eventually("not_sent", func() bool {
		n := notifications(t, s, "c1")["o1/order_confirmed"]
		return n.Status == "not_sent" && n.Reason == "no SMTP server configured" && n.Recipient == "ann@example.com"
	})
	s.Publish(customerevents.CustomerRemoved.New(ctx, customerevents.Customer{ID: "c1", Email: "ann@example.com", Status: "removed", Version: 2}))
	s.Eventually("not_sent: removed", func() bool {
		return notifications(t, s, "c1")["o1/order_confirmed"].Reason == "the customer was removed"
	})
	if n := s.CountEvents(notificationevents.NotificationSent.Type(), 0); n != 0 {
		t.Fatalf("%d notification_sent without a server", n)
	}
}
