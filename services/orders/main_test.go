package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/auth/authtest"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

// TestRun starts the service with run() on a fresh database and vhost, checks
// /health, an API answer and the HAL links, then stops it through its context.
func TestRun(t *testing.T) {
	amqpURL, vhost := testinfra.NewVhost(t)
	testinfra.DeclareExchange(t, vhost)
	dsn := testinfra.NewDatabaseDSN(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	vars := map[string]string{"HTTP_ADDR": addr, "AMQP_URL": amqpURL, "MYSQL_DSN": dsn, "PUBLIC_BASE_URL": "http://gw.test"}
	iss := authtest.NewIssuer(t)
	vars["OIDC_ISSUER"], vars["OIDC_AUDIENCE"] = iss.URL, authtest.Audience
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logs := &testinfra.SyncBuffer{}
	go func() { done <- run(ctx, func(k string) string { return vars[k] }, logs) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("run did not return after cancel")
		}
	}()

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not healthy: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/v1")
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
	q := testinfra.Queue(t, vhost, "sales.orders")
	if !q.Durable {
		t.Errorf("queue %+v", q)
	}
}
