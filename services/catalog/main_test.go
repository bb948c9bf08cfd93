package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/internal/auth/authtest"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
)

// listenAddr waits for run's "listening" log line and returns its address.
func listenAddr(t *testing.T, out *testinfra.SyncBuffer, errc <-chan error) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(out.String()))
		for sc.Scan() {
			var l struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "listening" {
				return l.Addr
			}
		}
		select {
		case err := <-errc:
			t.Fatalf("run stopped: %v\n%s", err, out)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("run did not listen:\n%s", out)
	return ""
}

// TestRunPublishesThroughTheOutbox starts the whole service on a fresh
// database and vhost (production permissions), adds a product over
// HTTP and receives product_added from sagittarius-a.
func TestRunPublishesThroughTheOutbox(t *testing.T) {
	adminURL, vhost := testinfra.NewVhost(t)
	testinfra.DeclareExchange(t, vhost)
	serviceURL := testinfra.NewServiceUser(t, vhost, "catalog.products")
	dsn := testinfra.NewDatabaseDSN(t)

	// A listener bound to the exchange, as any other service's queue is.
	conn, err := amqp.Dial(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, "", "sagittarius-a", false, nil); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := map[string]string{
		"HTTP_ADDR": "127.0.0.1:0", "AMQP_URL": serviceURL, "MYSQL_DSN": dsn,
		"PUBLIC_BASE_URL": "http://gw.test:8080",
	}
	iss := authtest.NewIssuer(t)
	env["OIDC_ISSUER"], env["OIDC_AUDIENCE"] = iss.URL, authtest.Audience
	out := &testinfra.SyncBuffer{}
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, func(k string) string { return env[k] }, out) }()
	addr := listenAddr(t, out, errc)

	// Health turns 200 once the bus is connected.
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/health")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("health never 200 (%v)\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}

	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/products", strings.NewReader(`{"sku":"mug-1","name":"Mug","price":{"amount":500,"currency":"EUR"}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", "req-run-test")
	req.Header.Set("Authorization", "Bearer "+iss.Staff())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 201 || !strings.HasPrefix(res.Header.Get("Location"), "http://gw.test:8080/catalog/v1/products/") {
		t.Fatalf("POST: %d %s %s", res.StatusCode, res.Header.Get("Location"), body)
	}

	select {
	case d := <-deliveries:
		if d.Type != "catalog.products.product_added" || d.AppId != "catalog.products" || d.ContentType != "application/json" || d.MessageId == "" {
			t.Fatalf("message properties: type %q app %q ct %q id %q", d.Type, d.AppId, d.ContentType, d.MessageId)
		}
		var p struct {
			UUID    string `json:"uuid"`
			Product struct {
				SKU   string
				Links map[string]struct{ Href string } `json:"_links"`
			} `json:"product"`
		}
		if err := json.Unmarshal(d.Body, &p); err != nil || p.UUID != d.MessageId || p.Product.SKU != "MUG-1" ||
			p.Product.Links["self"].Href != res.Header.Get("Location") {
			t.Fatalf("payload %s (%v)", d.Body, err)
		}
		if cid, _ := d.Headers["correlation_id"].(string); cid != "req-run-test" {
			t.Fatalf("correlation_id %v, want the request id", d.Headers["correlation_id"])
		}
		if sub, _ := d.Headers["actor_subject"].(string); sub != "staff-1" || d.Headers["actor_role"] != "staff" {
			t.Fatalf("actor %v %v, want the token's subject staff-1 and role staff", d.Headers["actor_subject"], d.Headers["actor_role"])
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no product_added within 20s\n%s", out)
	}

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop within 30s")
	}
}
