package main

// A harness that runs the service with run() on a fresh vhost (with the service's production
// RabbitMQ permissions) and a fresh database, publishes events to it through the real broker and
// observes the events it publishes. (The same file is in each service of logistics and finance.)

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

type harness struct {
	t      *testing.T
	base   string // http://127.0.0.1:port
	pub    *amqp.Channel
	events <-chan amqp.Delivery
	logs   *testinfra.SyncBuffer
	seen   []amqp.Delivery // observed events not consumed by waitEvent yet
}

type runFunc func(ctx context.Context, getenv func(string) string, stdout io.Writer) error

func startService(t *testing.T, run runFunc, service string) *harness {
	t.Helper()
	adminURL, vhost := testinfra.NewVhost(t)
	testinfra.DeclareExchange(t, vhost)
	serviceURL := testinfra.NewServiceUser(t, vhost, service)
	dsn := testinfra.NewDatabaseDSN(t)

	conn, err := amqp.Dial(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	pub, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	sub, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := sub.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.QueueBind(q.Name, "", eventbus.Exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	events, err := sub.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	vars := map[string]string{"HTTP_ADDR": addr, "AMQP_URL": serviceURL, "MYSQL_DSN": dsn, "PUBLIC_BASE_URL": "http://gw.test"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	h := &harness{t: t, base: "http://" + addr, pub: pub, events: events, logs: &testinfra.SyncBuffer{}}
	go func() { done <- run(ctx, func(k string) string { return vars[k] }, h.logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Error("run did not return after cancel")
		}
		if t.Failed() {
			t.Logf("service logs:\n%s", h.logs.String())
		}
	})
	h.eventually("healthy", func() bool {
		code, _ := h.do("GET", "/health", "")
		return code == 200
	})
	return h
}

// publish sends msg to sagittarius-a as its publisher would, and waits for the broker's confirm.
func (h *harness) publish(msg eventbus.Message, err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
	headers := amqp.Table{}
	for k, v := range msg.Headers {
		headers[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.pub.PublishWithContext(ctx, eventbus.Exchange, "", false, false, amqp.Publishing{
		ContentType: "application/json", DeliveryMode: amqp.Persistent, MessageId: msg.ID, Type: msg.Type,
		AppId: msg.AppID, Timestamp: msg.FiredAt, Headers: headers, Body: msg.Body,
	}); err != nil {
		h.t.Fatal(err)
	}
}

// waitEvent returns the entity (under key) of the next observed event of type typ for which match
// holds, failing the test after 20 s.
func (h *harness) waitEvent(typ, key string, match func(json.RawMessage) bool) json.RawMessage {
	h.t.Helper()
	take := func(d amqp.Delivery) (json.RawMessage, bool) {
		if d.Type != typ {
			return nil, false
		}
		var payload map[string]json.RawMessage
		if err := json.Unmarshal(d.Body, &payload); err != nil {
			h.t.Fatalf("event %s: %v", typ, err)
		}
		if match == nil || match(payload[key]) {
			return payload[key], true
		}
		return nil, false
	}
	for i, d := range h.seen {
		if e, ok := take(d); ok {
			h.seen = append(h.seen[:i], h.seen[i+1:]...)
			return e
		}
	}
	timeout := time.After(20 * time.Second)
	for {
		select {
		case d := <-h.events:
			if e, ok := take(d); ok {
				return e
			}
			h.seen = append(h.seen, d)
		case <-timeout:
			h.t.Fatalf("no %s event within 20s", typ)
		}
	}
}

// countEvents drains the observed events for a while and returns how many of type typ there were,
// keeping the others.
func (h *harness) countEvents(typ string, wait time.Duration) int {
	n := 0
	var keep []amqp.Delivery
	for _, d := range h.seen {
		if d.Type == typ {
			n++
		} else {
			keep = append(keep, d)
		}
	}
	h.seen = keep
	deadline := time.After(wait)
	for {
		select {
		case d := <-h.events:
			if d.Type == typ {
				n++
			} else {
				h.seen = append(h.seen, d)
			}
		case <-deadline:
			return n
		}
	}
}

// do sends an HTTP request with an optional JSON body and returns the status and body.
func (h *harness) do(method, path, body string, headers ...string) (int, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.base+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// getJSON GETs path, requires 200 and decodes the body into v.
func (h *harness) getJSON(path string, v any) {
	h.t.Helper()
	code, body := h.do("GET", path, "")
	if code != 200 {
		h.t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
}

// eventually polls cond for up to 20 s.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("not %s within 20s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
