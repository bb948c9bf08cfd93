package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestResourceLinks(t *testing.T) {
	r := Resource{Href: "x", Body: map[string]any{"_links": map[string]any{
		"self":     map[string]any{"href": "http://g/a"},
		"find":     map[string]any{"href": "http://g/a{?status,page}", "templated": true},
		"item":     map[string]any{"href": "http://g/a/{id}", "templated": true},
		"products": []any{map[string]any{"href": "http://g/p/1"}, map[string]any{"href": "http://g/p/2"}},
		"empty":    []any{},
		"broken":   "http://g/b",
	}}}
	tests := []struct{ rel, want string }{
		{"self", "http://g/a"}, {"find", "http://g/a"}, {"item", "http://g/a/"}, {"products", "http://g/p/1"},
		{"empty", ""}, {"broken", ""}, {"missing", ""},
	}
	for _, tt := range tests {
		got, err := r.Link(tt.rel)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("Link(%q) = %q, %v", tt.rel, got, err)
		}
	}
}

// fakeOrders is a tiny HAL server: an order whose status advances on every
// read, a payment appearing once the order is confirmed, and a problem on
// POST without a body.
func fakeOrders(t *testing.T) *httptest.Server {
	var (
		mu    sync.Mutex
		reads int
	)
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Method == "POST" && r.URL.Path == "/orders":
			b, _ := io.ReadAll(r.Body)
			if len(b) == 0 || r.Header.Get("Idempotency-Key") == "" {
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(422)
				_, _ = io.WriteString(w, `{"status":422,"title":"Validation failed","errors":[{"field":"/customer_id","message":"unknown customer"}]}`)
				return
			}
			w.Header().Set("Location", srv.URL+"/orders/1")
			w.Header().Set("ETag", `"1"`)
			w.WriteHeader(201)
			_, _ = fmt.Fprintf(w, `{"id":"1","status":"pending","_links":{"self":{"href":"%s/orders/1"}}}`, srv.URL)
		case r.URL.Path == "/orders/1":
			reads++
			status := []string{"pending", "pending", "confirmed"}[min(reads-1, 2)]
			pay := ""
			if status == "confirmed" {
				pay = fmt.Sprintf(`,"payment":{"href":"%s/payments/9"},"shipment":{"href":"%s/shipments/404"}`, srv.URL, srv.URL)
			}
			w.Header().Set("ETag", fmt.Sprintf(`"%d"`, reads))
			_, _ = fmt.Fprintf(w, `{"id":"1","status":%q,"_links":{"self":{"href":"%s/orders/1"}%s}}`, status, srv.URL, pay)
		case r.URL.Path == "/payments/9":
			_, _ = io.WriteString(w, `{"status":"captured","_links":{"self":{"href":"x"}}}`)
		default:
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(404)
			_, _ = io.WriteString(w, `{"status":404,"title":"Not Found"}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestClientAndJourney(t *testing.T) {
	srv := fakeOrders(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := &Client{HTTP: srv.Client()}

	_, err := c.Post(ctx, srv.URL+"/orders", nil, nil)
	if StatusOf(err) != 422 || !strings.Contains(err.Error(), "/customer_id unknown customer") {
		t.Fatalf("problem not decoded: %v", err)
	}
	o, err := c.Post(ctx, srv.URL+"/orders", map[string]any{"x": 1}, map[string]string{"Idempotency-Key": "k"})
	if err != nil || o.Href != srv.URL+"/orders/1" || o.ETag != `"1"` || o.String("status") != "pending" {
		t.Fatalf("created %+v, %v", o, err)
	}

	var out bytes.Buffer
	p := &Printer{w: &out, now: func() time.Time { return time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC) }}
	j := NewJourney("path", c, p, o.Href)
	if err := j.WaitFor(ctx, time.Millisecond, map[string]string{"order": "confirmed", "payment": "captured"}); err != nil {
		t.Fatal(err)
	}
	want := "12:00:00.000  [path]                   order        pending\n" +
		"12:00:00.000  [path]                   order        confirmed\n" +
		"12:00:00.000  [path]                   payment      captured\n"
	if out.String() != want {
		t.Fatalf("printed\n%s\nwant\n%s", out.String(), want)
	}
	if j.Summary() != "order confirmed, payment captured" {
		t.Fatalf("summary %q", j.Summary())
	}

	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	err = j.WaitFor(short, time.Millisecond, map[string]string{"order": "delivered"})
	if err == nil || !strings.Contains(err.Error(), `order is "confirmed", want "delivered"`) {
		t.Fatalf("timeout error %v", err)
	}
}

func TestRetry(t *testing.T) {
	ctx := context.Background()
	n := 0
	retryable := func(err error) bool { return err.Error() == "again" }
	err := Retry(ctx, time.Millisecond, retryable, func() error {
		n++
		if n < 3 {
			return errors.New("again")
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("Retry = %v after %d calls", err, n)
	}
	n = 0
	if err := Retry(ctx, time.Millisecond, retryable, func() error { n++; return errors.New("fatal") }); err == nil || n != 1 {
		t.Fatalf("non-retryable: %v after %d calls", err, n)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := Retry(short, time.Millisecond, retryable, func() error { return errors.New("again") }); err == nil || !strings.Contains(err.Error(), "gave up") {
		t.Fatalf("timeout: %v", err)
	}
}

func TestRunFailsWithoutGateway(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-gateway", "http://127.0.0.1:1", "-timeout", "2s", "-secrets", t.TempDir()},
		func(string) string { return "" }, &out); err == nil || !strings.Contains(err.Error(), "identity-demo-client.secret") {
		t.Fatalf("without the demo client's secret: %v", err)
	}
	secrets := t.TempDir()
	if err := os.WriteFile(secrets+"/identity-demo-client.secret", []byte("s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), []string{"-gateway", "http://127.0.0.1:1", "-timeout", "2s", "-secrets", secrets}, func(string) string { return "" }, &out)
	if err == nil || !strings.Contains(err.Error(), "setup") {
		t.Fatalf("run = %v", err)
	}
}

// TestDemoAgainstThePlatform runs every path against a running platform
// (scripts/up) when SAGITTARIUS_TEST_GATEWAY names its gateway, e.g.
// SAGITTARIUS_TEST_GATEWAY=http://127.0.0.1:8080 go test ./cmd/demo.
func TestDemoAgainstThePlatform(t *testing.T) {
	gw := os.Getenv("SAGITTARIUS_TEST_GATEWAY")
	if gw == "" {
		t.Skip("SAGITTARIUS_TEST_GATEWAY not set (start the platform with scripts/up)")
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"-gateway", gw, "-timeout", "90s"}, os.Getenv, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
}
