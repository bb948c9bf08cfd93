package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/auth/authtest"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/services/payments/payment"
)

type fakeStore struct {
	fail       error
	lastFilter payment.Filter
	methods    map[string]payment.Method
}

func (f *fakeStore) AddMethod(_ context.Context, m payment.Method) error {
	if f.methods == nil {
		f.methods = map[string]payment.Method{}
	}
	f.methods[m.ID] = m
	return nil
}

func (f *fakeStore) Methods(_ context.Context, customer *string, _, _ int) ([]payment.Method, int, error) {
	var out []payment.Method
	for _, m := range f.methods {
		if customer == nil || *customer == m.CustomerID {
			out = append(out, m)
		}
	}
	return out, len(out), nil
}

func (f *fakeStore) Method(_ context.Context, id string) (payment.Method, error) {
	m, ok := f.methods[id]
	if !ok {
		return payment.Method{}, payment.ErrNotFound
	}
	return m, nil
}

func (f *fakeStore) refunded() payment.Payment {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	return payment.Payment{ID: "pay-1", OrderID: "o1", Amount: payment.Money{Amount: 1999, Currency: "EUR"},
		Status: payment.Refunded, ProviderReference: "sim_cap_x", RefundReference: "sim_ref_x", Version: 2,
		CreatedAt: now, CapturedAt: &now, RefundedAt: &now}
}

func (f *fakeStore) Payment(_ context.Context, id string) (payment.Payment, error) {
	if f.fail != nil {
		return payment.Payment{}, f.fail
	}
	if id != "pay-1" {
		return payment.Payment{}, payment.ErrNotFound
	}
	return f.refunded(), nil
}

func (f *fakeStore) Payments(_ context.Context, flt payment.Filter, limit, offset int) ([]payment.Payment, int, error) {
	if f.fail != nil {
		return nil, 0, f.fail
	}
	f.lastFilter = flt
	return []payment.Payment{f.refunded()}, 41, nil
}

// CustomerOf: order o1 is customer c1's.
func (f *fakeStore) CustomerOf(_ context.Context, orderID string) (string, error) {
	if orderID == "o1" {
		return "c1", nil
	}
	return "", nil
}

// serve sends one request as staff, or as the customer of header
// authtest.CustomerHeader.
func serve(store Store, method, target string, header ...string) *httptest.ResponseRecorder {
	return serveBody(store, method, target, "", header...)
}

func serveBody(store Store, method, target, body string, header ...string) *httptest.ResponseRecorder {
	logger := slog.New(slog.DiscardHandler)
	h := httpkit.Stack(authtest.Caller(New(store, NewRenderer(hal.MustBase("http://gw.test")), logger).Routes()), httpkit.Options{Logger: logger})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	h.ServeHTTP(rec, req)
	return rec
}

// TestCustomersSeeOnlyTheirOwnPayments: a customer reads the payment of
// their own order; another customer gets the 404 of a missing payment, and
// lists only the payments of their own orders.
func TestCustomersSeeOnlyTheirOwnPayments(t *testing.T) {
	store := &fakeStore{}
	if rec := serve(store, "GET", "/v1/payments/pay-1", authtest.CustomerHeader, "c1"); rec.Code != 200 {
		t.Fatalf("own payment: %d %s", rec.Code, rec.Body)
	}
	missing := serve(store, "GET", "/v1/payments/nope", authtest.CustomerHeader, "c2").Body.String()
	if rec := serve(store, "GET", "/v1/payments/pay-1", authtest.CustomerHeader, "c2"); rec.Code != 404 ||
		rec.Body.String() != strings.Replace(missing, "nope", "pay-1", 1) {
		t.Fatalf("another customer's payment: %d %s (missing: %s)", rec.Code, rec.Body, missing)
	}
	serve(store, "GET", "/v1/payments?order_id=o1", authtest.CustomerHeader, "c2")
	if c := store.lastFilter.Customer; c == nil || *c != "c2" {
		t.Fatalf("a customer's list is not confined to their orders: %+v", store.lastFilter)
	}
	serve(store, "GET", "/v1/payments", "")
	if store.lastFilter.Customer != nil {
		t.Fatalf("staff's list is confined: %+v", store.lastFilter)
	}
}

func TestRoutes(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		path       string
		fail       error
		wantStatus int
		wantIn     []string
		wantFilter payment.Filter
	}{
		{name: "root", method: "GET", path: "/v1", wantStatus: 200, wantIn: []string{`"payments":{"href":"http://gw.test/payments/v1/payments"}`}},
		{name: "payment", method: "GET", path: "/v1/payments/pay-1", wantStatus: 200, wantIn: []string{
			`"status":"refunded"`, `"refunded_at":"2026-11-22T10:00:00Z"`, `"amount":{"amount":1999,"currency":"EUR"}`,
			`"order":{"href":"http://gw.test/orders/v1/orders/o1"}`, `"self":{"href":"http://gw.test/payments/v1/payments/pay-1"}`}},
		{name: "unknown payment", method: "GET", path: "/v1/payments/nope", wantStatus: 404},
		{name: "long id", method: "GET", path: "/v1/payments/" + strings.Repeat("a", 100), wantStatus: 404},
		{name: "list", method: "GET", path: "/v1/payments", wantStatus: 200, wantIn: []string{`"_embedded":{"payments":[`, `"total":41`,
			`"next":{"href":"http://gw.test/payments/v1/payments?page=2&size=20"}`, `"last":{"href":"http://gw.test/payments/v1/payments?page=3&size=20"}`}},
		{name: "filtered", method: "GET", path: "/v1/payments?order_id=o1&status=refunded&page=2&size=5", wantStatus: 200,
			wantIn: []string{`order_id=o1`, `"prev"`}, wantFilter: payment.Filter{OrderID: "o1", Status: payment.Refunded}},
		{name: "bad status", method: "GET", path: "/v1/payments?status=paid", wantStatus: 400},
		{name: "repeated order", method: "GET", path: "/v1/payments?order_id=a&order_id=b", wantStatus: 400},
		{name: "long order", method: "GET", path: "/v1/payments?order_id=" + strings.Repeat("a", 101), wantStatus: 400},
		{name: "bad page", method: "GET", path: "/v1/payments?page=x", wantStatus: 400},
		{name: "post", method: "POST", path: "/v1/payments", wantStatus: 405},
		{name: "delete", method: "DELETE", path: "/v1/payments/pay-1", wantStatus: 405},
		{name: "no path", method: "GET", path: "/v1/refunds", wantStatus: 404},
		{name: "store failure", method: "GET", path: "/v1/payments", fail: errors.New("secret db detail"), wantStatus: 500},
		{name: "database down", method: "GET", path: "/v1/payments", fail: fmt.Errorf("payments: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}), wantStatus: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &fakeStore{fail: tt.fail}
			rec := serve(store, tt.method, tt.path)
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, body)
			}
			ct := rec.Header().Get("Content-Type")
			if rec.Code >= 400 && ct != "application/problem+json" || rec.Code < 400 && ct != hal.ContentType {
				t.Fatalf("Content-Type %q for %d", ct, rec.Code)
			}
			for _, s := range tt.wantIn {
				if !strings.Contains(string(body), s) {
					t.Fatalf("body lacks %s: %s", s, body)
				}
			}
			if strings.Contains(string(body), "secret") {
				t.Fatalf("leak: %s", body)
			}
			if store.lastFilter != tt.wantFilter {
				t.Fatalf("filter %+v, want %+v", store.lastFilter, tt.wantFilter)
			}
			if !json.Valid(body) {
				t.Fatalf("invalid JSON: %s", body)
			}
			if rec.Code == http.StatusMethodNotAllowed && rec.Header().Get("Allow") == "" {
				t.Fatal("405 without Allow")
			}
		})
	}
}

func TestPaymentETag(t *testing.T) {
	if got := serve(&fakeStore{}, "GET", "/v1/payments/pay-1").Header().Get("ETag"); got != `"2"` {
		t.Fatalf("ETag %q", got)
	}
}

// FuzzQuery: no query string yields a 5xx or a panic.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{"order_id=o1", "status=x&page=-1", "size=%zz", "page=99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		req := httptest.NewRequest("GET", "/v1/payments", nil)
		req.URL.RawQuery = q
		rec := httptest.NewRecorder()
		logger := slog.New(slog.DiscardHandler)
		New(&fakeStore{}, NewRenderer(hal.MustBase("http://gw.test")), logger).Routes().ServeHTTP(rec, req)
		if rec.Code != 200 && rec.Code != 400 {
			t.Fatalf("%d for %q", rec.Code, q)
		}
	})
}

// TestPaymentMethods: a customer registers a method for themselves whatever
// the body says; no answer shows the token; another customer gets the 404
// of a missing method; staff must name the customer.
func TestPaymentMethods(t *testing.T) {
	store := &fakeStore{}
	rec := serveBody(store, "POST", "/v1/payment-methods", `{"token":"tok_secret_4242","customer_id":"c2"}`, authtest.CustomerHeader, "c1")
	var m struct {
		ID         string `json:"id"`
		CustomerID string `json:"customer_id"`
	}
	json.Unmarshal(rec.Body.Bytes(), &m)
	if rec.Code != 201 || m.CustomerID != "c1" || strings.Contains(rec.Body.String(), "tok_secret") ||
		rec.Header().Get("Location") != "http://gw.test/payments/v1/payment-methods/"+m.ID {
		t.Fatalf("register: %d %s %q", rec.Code, rec.Body, rec.Header().Get("Location"))
	}
	if got := store.methods[m.ID]; got.Token != "tok_secret_4242" || got.CustomerID != "c1" {
		t.Fatalf("stored %+v", got)
	}
	if rec := serve(store, "GET", "/v1/payment-methods/"+m.ID, authtest.CustomerHeader, "c1"); rec.Code != 200 || strings.Contains(rec.Body.String(), "tok_secret") {
		t.Fatalf("own method: %d %s", rec.Code, rec.Body)
	}
	missing := serve(store, "GET", "/v1/payment-methods/nope", authtest.CustomerHeader, "c2").Body.String()
	if rec := serve(store, "GET", "/v1/payment-methods/"+m.ID, authtest.CustomerHeader, "c2"); rec.Code != 404 || rec.Body.String() != strings.Replace(missing, "nope", m.ID, 1) {
		t.Fatalf("another customer's method: %d %s (missing: %s)", rec.Code, rec.Body, missing)
	}
	if rec := serve(store, "GET", "/v1/payment-methods", authtest.CustomerHeader, "c2"); !strings.Contains(rec.Body.String(), `"total":0`) {
		t.Fatalf("another customer's list: %s", rec.Body)
	}
	if rec := serve(store, "GET", "/v1/payment-methods", authtest.CustomerHeader, "c1"); !strings.Contains(rec.Body.String(), `"total":1`) || strings.Contains(rec.Body.String(), "tok_secret") {
		t.Fatalf("own list: %s", rec.Body)
	}
	for body, field := range map[string]string{`{"token":"tok_visa"}`: "/customer_id", `{"token":"has space","customer_id":"c9"}`: "/token"} {
		if rec := serveBody(store, "POST", "/v1/payment-methods", body); rec.Code != 422 || !strings.Contains(rec.Body.String(), `"field":"`+field+`"`) {
			t.Errorf("staff %s: %d %s", body, rec.Code, rec.Body)
		}
	}
	if rec := serveBody(store, "POST", "/v1/payment-methods", `{"token":"tok_visa","customer_id":"c9"}`); rec.Code != 201 || !strings.Contains(rec.Body.String(), `"customer_id":"c9"`) {
		t.Errorf("staff for c9: %d %s", rec.Code, rec.Body)
	}
}
