package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/auth/authtest"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipment"
)

// fakeStore holds one shipment "s1" of order "o1" in memory.
type fakeStore struct {
	s    shipment.Shipment
	fail error
}

func newFakeStore(status shipment.Status, version int64) *fakeStore {
	return &fakeStore{s: shipment.Shipment{ID: "s1", OrderID: "o1", Status: status, Version: version,
		Address:     shipment.Address{Name: "Ada", Line1: "1 Road", PostalCode: "1000", City: "Brussels", Country: "BE"},
		ScheduledAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}}
}

func (f *fakeStore) Shipment(_ context.Context, id string) (shipment.Shipment, error) {
	if f.fail != nil {
		return shipment.Shipment{}, f.fail
	}
	if id != f.s.ID {
		return shipment.Shipment{}, shipment.ErrNotFound
	}
	return f.s, nil
}

func (f *fakeStore) Shipments(_ context.Context, flt shipment.Filter, _, _ int) ([]shipment.Shipment, int, error) {
	if f.fail != nil {
		return nil, 0, f.fail
	}
	if flt.Customer != nil && *flt.Customer != "c1" {
		return nil, 0, nil
	}
	return []shipment.Shipment{f.s}, 1, nil
}

// CustomerOf: order o1 is customer c1's.
func (f *fakeStore) CustomerOf(_ context.Context, orderID string) (string, error) {
	if orderID == "o1" {
		return "c1", nil
	}
	return "", nil
}

func (f *fakeStore) UpdateShipment(_ context.Context, id string, change func(shipment.Shipment, time.Time) (shipment.Shipment, bool, error)) (shipment.Shipment, error) {
	if f.fail != nil {
		return shipment.Shipment{}, f.fail
	}
	if id != f.s.ID {
		return shipment.Shipment{}, shipment.ErrNotFound
	}
	next, changed, err := change(f.s, time.Now())
	if err != nil {
		return f.s, err
	}
	if changed {
		f.s = next
	}
	return f.s, nil
}

func TestRoutes(t *testing.T) {
	const ct = "application/json"
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		ifMatch     string
		body        string
		from        shipment.Status
		fail        error
		wantStatus  int
		wantIn      string
		wantETag    string
	}{
		{name: "root", method: "GET", path: "/v1/", wantStatus: 200, wantIn: `"shipments"`},
		{name: "get", method: "GET", path: "/v1/shipments/s1", wantStatus: 200, wantETag: `"1"`,
			wantIn: `"address":{"name":"Ada","line1":"1 Road","postal_code":"1000","city":"Brussels","country":"BE"}`},
		{name: "get unknown", method: "GET", path: "/v1/shipments/s2", wantStatus: 404},
		{name: "list", method: "GET", path: "/v1/shipments?order_id=o1&status=scheduled", wantStatus: 200, wantIn: `"_embedded":{"shipments":[`},
		{name: "list bad status", method: "GET", path: "/v1/shipments?status=lost", wantStatus: 400},
		{name: "list repeated", method: "GET", path: "/v1/shipments?order_id=a&order_id=b", wantStatus: 400},
		{name: "list bad size", method: "GET", path: "/v1/shipments?size=0", wantStatus: 400},
		{name: "post", method: "POST", path: "/v1/shipments", contentType: ct, body: `{}`, wantStatus: 405},
		{name: "put", method: "PUT", path: "/v1/shipments/s1", contentType: ct, body: `{}`, wantStatus: 405},
		{name: "delete", method: "DELETE", path: "/v1/shipments/s1", wantStatus: 405},

		{name: "dispatch", method: "PATCH", path: "/v1/shipments/s1", contentType: ct, body: `{"status":"dispatched"}`,
			wantStatus: 200, wantIn: `"status":"dispatched"`, wantETag: `"2"`},
		{name: "dispatch merge-patch", method: "PATCH", path: "/v1/shipments/s1", contentType: "application/merge-patch+json",
			body: `{"status":"dispatched"}`, wantStatus: 200},
		{name: "dispatch with If-Match", method: "PATCH", path: "/v1/shipments/s1", contentType: ct, ifMatch: `"1"`,
			body: `{"status":"dispatched"}`, wantStatus: 200, wantETag: `"2"`},
		{name: "dispatch with star", method: "PATCH", path: "/v1/shipments/s1", contentType: ct, ifMatch: `*`,
			body: `{"status":"dispatched"}`, wantStatus: 200},
		{name: "stale If-Match", method: "PATCH", path: "/v1/shipments/s1", contentType: ct, ifMatch: `"0"`,
			body: `{"status":"dispatched"}`, wantStatus: 412, wantIn: "stale-version"},
		{name: "weak If-Match", method: "PATCH", path: "/v1/shipments/s1", contentType: ct, ifMatch: `W/"1"`,
			body: `{"status":"dispatched"}`, wantStatus: 412},
		{name: "garbage If-Match", method: "PATCH", path: "/v1/shipments/s1", contentType: ct, ifMatch: `nonsense`,
			body: `{"status":"dispatched"}`, wantStatus: 412},
		{name: "deliver", method: "PATCH", path: "/v1/shipments/s1", contentType: ct, body: `{"status":"delivered"}`,
			from: shipment.Dispatched, wantStatus: 200, wantIn: `"delivered_at"`},
		{name: "deliver before dispatch", method: "PATCH", path: "/v1/shipments/s1", contentType: ct, body: `{"status":"delivered"}`,
			wantStatus: 409, wantIn: "state-conflict"},
		{name: "back to scheduled", method: "PATCH", path: "/v1/shipments/s1", contentType: ct, body: `{"status":"scheduled"}`,
			from: shipment.Dispatched, wantStatus: 409},
		{name: "cancel through the API", method: "PATCH", path: "/v1/shipments/s1", contentType: ct, body: `{"status":"cancelled"}`, wantStatus: 409},
		{name: "dispatch a cancelled one", method: "PATCH", path: "/v1/shipments/s1", contentType: ct, body: `{"status":"dispatched"}`,
			from: shipment.Cancelled, wantStatus: 409},
		{name: "same status", method: "PATCH", path: "/v1/shipments/s1", contentType: ct, body: `{"status":"scheduled"}`, wantStatus: 200, wantETag: `"1"`},
		{name: "unknown status", method: "PATCH", path: "/v1/shipments/s1", contentType: ct, body: `{"status":"lost"}`, wantStatus: 422, wantIn: `"/status"`},
		{name: "status not a string", method: "PATCH", path: "/v1/shipments/s1", contentType: ct, body: `{"status":1}`, wantStatus: 422},
		{name: "missing status", method: "PATCH", path: "/v1/shipments/s1", contentType: ct, body: `{}`, wantStatus: 422},
		{name: "null status", method: "PATCH", path: "/v1/shipments/s1", contentType: ct, body: `{"status":null}`, wantStatus: 422},
		{name: "other field", method: "PATCH", path: "/v1/shipments/s1", contentType: ct, body: `{"status":"dispatched","address":{}}`, wantStatus: 422},
		{name: "malformed", method: "PATCH", path: "/v1/shipments/s1", contentType: ct, body: `{"status":`, wantStatus: 400},
		{name: "empty", method: "PATCH", path: "/v1/shipments/s1", contentType: ct, wantStatus: 400},
		{name: "no content type", method: "PATCH", path: "/v1/shipments/s1", body: `{"status":"dispatched"}`, wantStatus: 415},
		{name: "form", method: "PATCH", path: "/v1/shipments/s1", contentType: "application/x-www-form-urlencoded", body: `status=dispatched`, wantStatus: 415},
		{name: "latin1", method: "PATCH", path: "/v1/shipments/s1", contentType: "application/json; charset=latin1", body: `{"status":"dispatched"}`, wantStatus: 415},
		{name: "huge", method: "PATCH", path: "/v1/shipments/s1", contentType: ct, body: `{"status":"` + strings.Repeat("d", 5000) + `"}`, wantStatus: 413},
		{name: "unknown shipment", method: "PATCH", path: "/v1/shipments/s9", contentType: ct, body: `{"status":"dispatched"}`, wantStatus: 404},
		{name: "store failure", method: "PATCH", path: "/v1/shipments/s1", contentType: ct, body: `{"status":"dispatched"}`,
			fail: errors.New("secret"), wantStatus: 500},
		{name: "database down", method: "PATCH", path: "/v1/shipments/s1", contentType: ct, body: `{"status":"dispatched"}`,
			fail: fmt.Errorf("shipments: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}), wantStatus: 503},
	}
	logger := slog.New(slog.DiscardHandler)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from := tt.from
			if from == "" {
				from = shipment.Scheduled
			}
			store := newFakeStore(from, 1)
			store.fail = tt.fail
			h := httpkit.Stack(authtest.Caller(New(store, NewRenderer(hal.MustBase("http://gw.test")), logger).Routes()),
				httpkit.Options{Logger: logger, MaxBodyBytes: 4096})
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.ifMatch != "" {
				req.Header.Set("If-Match", tt.ifMatch)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, body)
			}
			ctype := rec.Header().Get("Content-Type")
			if rec.Code >= 400 && ctype != "application/problem+json" || rec.Code < 400 && ctype != hal.ContentType {
				t.Fatalf("Content-Type %q for %d", ctype, rec.Code)
			}
			if tt.wantIn != "" && !strings.Contains(string(body), tt.wantIn) {
				t.Fatalf("body lacks %s: %s", tt.wantIn, body)
			}
			if tt.wantETag != "" && rec.Header().Get("ETag") != tt.wantETag {
				t.Fatalf("ETag %q, want %s", rec.Header().Get("ETag"), tt.wantETag)
			}
			if rec.Code >= 400 && store.s.Status != from {
				t.Fatalf("a failed request changed the shipment to %s", store.s.Status)
			}
			if strings.Contains(string(body), "secret") || !json.Valid(body) {
				t.Fatalf("body: %s", body)
			}
		})
	}
}

// FuzzPatchBody: no body, however malformed, yields a 5xx or a panic.
func FuzzPatchBody(f *testing.F) {
	for _, s := range []string{`{"status":"dispatched"}`, `{"status":"x"}`, `{`, `[]`, `{"status":{}}`, "\xff"} {
		f.Add(s, `"1"`)
	}
	logger := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, body, ifMatch string) {
		h := New(newFakeStore(shipment.Scheduled, 1), NewRenderer(hal.MustBase("http://gw.test")), logger).Routes()
		req := httptest.NewRequest("PATCH", "/v1/shipments/s1", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("If-Match", ifMatch)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%d for %q", rec.Code, body)
		}
	})
}

// TestCustomersSeeOnlyTheirOwnShipments: the shipment of customer c1's order
// is theirs to read; another customer gets the 404 of a missing shipment and
// an empty list; a customer cannot dispatch.
func TestCustomersSeeOnlyTheirOwnShipments(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	h := httpkit.Stack(authtest.Caller(New(newFakeStore(shipment.Scheduled, 1), NewRenderer(hal.MustBase("http://gw.test")), logger).Routes()),
		httpkit.Options{Logger: logger})
	do := func(method, path, customer string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set(authtest.CustomerHeader, customer)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := do("GET", "/v1/shipments/s1", "c1"); rec.Code != 200 {
		t.Fatalf("own shipment: %d %s", rec.Code, rec.Body)
	}
	missing := do("GET", "/v1/shipments/s9", "c2").Body.String()
	if rec := do("GET", "/v1/shipments/s1", "c2"); rec.Code != 404 || rec.Body.String() != strings.Replace(missing, "s9", "s1", 1) {
		t.Fatalf("another customer's shipment: %d %s (missing: %s)", rec.Code, rec.Body, missing)
	}
	if rec := do("GET", "/v1/shipments", "c2"); !strings.Contains(rec.Body.String(), `"total":0`) {
		t.Fatalf("another customer's list: %s", rec.Body)
	}
	if rec := do("GET", "/v1/shipments", "c1"); !strings.Contains(rec.Body.String(), `"total":1`) {
		t.Fatalf("own list: %s", rec.Body)
	}
}
