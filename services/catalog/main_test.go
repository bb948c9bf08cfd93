package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sagittarius-a/sagittarius/internal/testinfra/servicetest"
	"github.com/sagittarius-a/sagittarius/services/catalog/productevents"
)

// TestRunPublishesThroughTheOutbox starts the whole service on a fresh
// database and vhost (production permissions), adds a product over
// HTTP and receives product_added from sagittarius-a.
func TestRunPublishesThroughTheOutbox(t *testing.T) {
	s := servicetest.Start(t, run, productevents.Service)

	code, body := s.Do("POST", "/v1/products", `{"sku":"mug-1","name":"Mug","price":{"amount":500,"currency":"EUR"}}`,
		"X-Request-Id", "req-run-test")
	var created productevents.Product
	if err := json.Unmarshal(body, &created); code != 201 || err != nil {
		t.Fatalf("POST: %d %s", code, body)
	}

	d := s.WaitMessage(productevents.ProductAdded.Type(), nil)
	if d.AppId != productevents.Service || d.ContentType != "application/json" || d.MessageId == "" {
		t.Fatalf("message properties: app %q ct %q id %q", d.AppId, d.ContentType, d.MessageId)
	}
	if cid, _ := d.Headers["correlation_id"].(string); cid != "req-run-test" {
		t.Fatalf("correlation_id %v, want the request id", d.Headers["correlation_id"])
	}
	var p struct {
		UUID    string                `json:"uuid"`
		Product productevents.Product `json:"product"`
	}
	if err := json.Unmarshal(d.Body, &p); err != nil || p.UUID != d.MessageId || p.Product.SKU != "MUG-1" {
		t.Fatalf("payload %s (%v)", d.Body, err)
	}
	if self := p.Product.Links.Href("self"); self != created.Links.Href("self") ||
		!strings.HasPrefix(self, "http://gw.test/catalog/v1/products/") {
		t.Fatalf("self %q, want the created product's %q", self, created.Links.Href("self"))
	}
}
