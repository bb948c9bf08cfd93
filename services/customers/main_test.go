package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sagittarius-a/sagittarius/internal/testinfra/servicetest"
	"github.com/sagittarius-a/sagittarius/services/customers/customerevents"
)

// TestRunPublishesThroughTheOutbox starts the whole service on a fresh
// database and vhost (production permissions), registers a customer over
// HTTP and receives customer_registered from sagittarius-a.
func TestRunPublishesThroughTheOutbox(t *testing.T) {
	s := servicetest.Start(t, run, customerevents.Service)

	code, body := s.Do("POST", "/v1/customers", `{"email":"ann@example.com","name":"Ann"}`,
		"X-Request-Id", "req-run-test")
	var created customerevents.Customer
	if err := json.Unmarshal(body, &created); code != 201 || err != nil {
		t.Fatalf("POST: %d %s", code, body)
	}

	d := s.WaitMessage(customerevents.CustomerRegistered.Type(), nil)
	if d.AppId != customerevents.Service || d.ContentType != "application/json" || d.MessageId == "" {
		t.Fatalf("message properties: app %q ct %q id %q", d.AppId, d.ContentType, d.MessageId)
	}
	if cid, _ := d.Headers["correlation_id"].(string); cid != "req-run-test" {
		t.Fatalf("correlation_id %v, want the request id", d.Headers["correlation_id"])
	}
	var p struct {
		UUID     string                  `json:"uuid"`
		Customer customerevents.Customer `json:"customer"`
	}
	if err := json.Unmarshal(d.Body, &p); err != nil || p.UUID != d.MessageId || p.Customer.Email != "ann@example.com" {
		t.Fatalf("payload %s (%v)", d.Body, err)
	}
	if self := p.Customer.Links.Href("self"); self != created.Links.Href("self") ||
		!strings.HasPrefix(self, "http://gw.test/customers/v1/customers/") {
		t.Fatalf("self %q, want the created customer's %q", self, created.Links.Href("self"))
	}
}
