package main

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/sagittarius-a/sagittarius/internal/testinfra"
	"github.com/sagittarius-a/sagittarius/internal/testinfra/servicetest"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
)

// TestRun starts the service with run() on a fresh database and vhost
// (production permissions), checks an API answer and the HAL links and the
// service's durable queue; servicetest stops it through its context.
func TestRun(t *testing.T) {
	s := servicetest.Start(t, run, orderevents.Service)

	resp, err := http.Get(s.URL + "/v1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var index struct {
		Links map[string]struct{ Href string } `json:"_links"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&index); err != nil || index.Links["orders"].Href != "http://gw.test/orders/v1/orders" {
		t.Errorf("index: %v %+v", err, index)
	}
	if resp.Header.Get("Content-Type") != "application/hal+json" {
		t.Errorf("Content-Type %s", resp.Header.Get("Content-Type"))
	}
	q := testinfra.Queue(t, s.Vhost, orderevents.Service)
	if !q.Durable {
		t.Errorf("queue %+v", q)
	}
}
