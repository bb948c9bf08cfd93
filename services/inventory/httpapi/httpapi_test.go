package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/services/inventory/inventory"
)

// fakeStore is an in-memory Store for handler tests: decoding, routing and the error mapping.
type fakeStore struct {
	items map[string]inventory.StockItem
	res   map[string]inventory.Reservation
	fail  error // returned by every method when set
}

func newFakeStore() *fakeStore {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	return &fakeStore{
		items: map[string]inventory.StockItem{
			"p1":      {ProductID: "p1", ProductName: "One", Status: inventory.ProductActive, Available: 3, Version: 4, UpdatedAt: now},
			"retired": {ProductID: "retired", Status: inventory.ProductRetired, Version: 1, UpdatedAt: now},
		},
		res: map[string]inventory.Reservation{
			"o1": {OrderID: "o1", Status: inventory.Held, Lines: []inventory.Line{{ProductID: "p1", Quantity: 2}}, CreatedAt: now},
		},
	}
}

func (f *fakeStore) StockItem(_ context.Context, id string) (inventory.StockItem, error) {
	if f.fail != nil {
		return inventory.StockItem{}, f.fail
	}
	it, ok := f.items[id]
	if !ok {
		return it, inventory.ErrNotFound
	}
	return it, nil
}

func (f *fakeStore) StockItems(_ context.Context, _ inventory.StockFilter, limit, offset int) ([]inventory.StockItem, int, error) {
	if f.fail != nil {
		return nil, 0, f.fail
	}
	return []inventory.StockItem{f.items["p1"]}, 1, nil
}

func (f *fakeStore) Replenish(_ context.Context, id string, q int64) (inventory.Replenishment, inventory.StockItem, error) {
	if f.fail != nil {
		return inventory.Replenishment{}, inventory.StockItem{}, f.fail
	}
	it, ok := f.items[id]
	if !ok {
		return inventory.Replenishment{}, it, inventory.ErrNotFound
	}
	it, err := it.Replenish(q)
	if err != nil {
		return inventory.Replenishment{}, it, err
	}
	f.items[id] = it
	return inventory.Replenishment{ID: "r-1", ProductID: id, Quantity: q, CreatedAt: it.UpdatedAt}, it, nil
}

func (f *fakeStore) Replenishment(_ context.Context, id string) (inventory.Replenishment, error) {
	if id == "r-1" {
		return inventory.Replenishment{ID: "r-1", ProductID: "p1", Quantity: 1}, nil
	}
	return inventory.Replenishment{}, inventory.ErrNotFound
}

func (f *fakeStore) Replenishments(context.Context, string, int, int) ([]inventory.Replenishment, int, error) {
	return nil, 0, f.fail
}

func (f *fakeStore) Reservation(_ context.Context, id string) (inventory.Reservation, error) {
	if f.fail != nil {
		return inventory.Reservation{}, f.fail
	}
	r, ok := f.res[id]
	if !ok {
		return r, inventory.ErrNotFound
	}
	return r, nil
}

func (f *fakeStore) Reservations(context.Context, inventory.ReservationFilter, int, int) ([]inventory.Reservation, int, error) {
	if f.fail != nil {
		return nil, 0, f.fail
	}
	return []inventory.Reservation{f.res["o1"]}, 1, nil
}

func newServer(store Store) http.Handler {
	logger := slog.New(slog.DiscardHandler)
	api := New(store, NewRenderer(hal.MustBase("http://gw.test")), logger)
	return httpkit.Stack(api.Routes(), httpkit.Options{Logger: logger, MaxBodyBytes: 4096})
}

func TestRoutes(t *testing.T) {
	const ct = "application/json"
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		fail        error
		wantStatus  int
		wantType    string // Content-Type of the answer
		wantIn      string // substring of the body
	}{
		{name: "root", method: "GET", path: "/v1", wantStatus: 200, wantType: hal.ContentType, wantIn: `"stock-items"`},
		{name: "stock item", method: "GET", path: "/v1/stock-items/p1", wantStatus: 200, wantType: hal.ContentType,
			wantIn: `"self":{"href":"http://gw.test/inventory/v1/stock-items/p1"}`},
		{name: "unknown stock item", method: "GET", path: "/v1/stock-items/nope", wantStatus: 404, wantType: "application/problem+json"},
		{name: "too long id", method: "GET", path: "/v1/stock-items/" + strings.Repeat("x", 200), wantStatus: 404},
		{name: "stock items", method: "GET", path: "/v1/stock-items?status=active", wantStatus: 200, wantType: hal.ContentType,
			wantIn: `"_embedded":{"stock-items":[`},
		{name: "bad status filter", method: "GET", path: "/v1/stock-items?status=gone", wantStatus: 400},
		{name: "repeated filter", method: "GET", path: "/v1/stock-items?status=active&status=retired", wantStatus: 400},
		{name: "bad page", method: "GET", path: "/v1/stock-items?page=0", wantStatus: 400},
		{name: "bad size", method: "GET", path: "/v1/reservations?size=1000", wantStatus: 400},
		{name: "reservation", method: "GET", path: "/v1/reservations/o1", wantStatus: 200, wantIn: `"order":{"href":"http://gw.test/orders/v1/orders/o1"}`},
		{name: "unknown reservation", method: "GET", path: "/v1/reservations/o9", wantStatus: 404},
		{name: "reservations", method: "GET", path: "/v1/reservations?status=held&product_id=p1", wantStatus: 200, wantIn: `"reservations":[`},
		{name: "bad reservation status", method: "GET", path: "/v1/reservations?status=x", wantStatus: 400},
		{name: "replenishment", method: "GET", path: "/v1/replenishments/r-1", wantStatus: 200},
		{name: "unknown replenishment", method: "GET", path: "/v1/replenishments/r-2", wantStatus: 404},
		{name: "replenishments of unknown product", method: "GET", path: "/v1/stock-items/nope/replenishments", wantStatus: 404},
		{name: "no such path", method: "GET", path: "/v1/stocks", wantStatus: 404, wantType: "application/problem+json"},
		{name: "method not allowed", method: "DELETE", path: "/v1/stock-items/p1", wantStatus: 405, wantType: "application/problem+json"},
		{name: "put reservations", method: "PUT", path: "/v1/reservations/o1", body: "{}", contentType: ct, wantStatus: 405},

		{name: "replenish", method: "POST", path: "/v1/stock-items/p1/replenishments", contentType: ct, body: `{"quantity":5}`,
			wantStatus: 201, wantType: hal.ContentType, wantIn: `"quantity":5`},
		{name: "replenish with charset", method: "POST", path: "/v1/stock-items/p1/replenishments", contentType: "application/json; charset=utf-8",
			body: `{"quantity":1}`, wantStatus: 201},
		{name: "no content type", method: "POST", path: "/v1/stock-items/p1/replenishments", body: `{"quantity":5}`, wantStatus: 415},
		{name: "text body", method: "POST", path: "/v1/stock-items/p1/replenishments", contentType: "text/plain", body: `5`, wantStatus: 415},
		{name: "empty body", method: "POST", path: "/v1/stock-items/p1/replenishments", contentType: ct, wantStatus: 400},
		{name: "malformed", method: "POST", path: "/v1/stock-items/p1/replenishments", contentType: ct, body: `{"quantity":`, wantStatus: 400},
		{name: "two values", method: "POST", path: "/v1/stock-items/p1/replenishments", contentType: ct, body: `{"quantity":1}{}`, wantStatus: 400},
		{name: "array", method: "POST", path: "/v1/stock-items/p1/replenishments", contentType: ct, body: `[1]`, wantStatus: 422},
		{name: "null", method: "POST", path: "/v1/stock-items/p1/replenishments", contentType: ct, body: `null`, wantStatus: 422},
		{name: "missing quantity", method: "POST", path: "/v1/stock-items/p1/replenishments", contentType: ct, body: `{}`, wantStatus: 422, wantIn: `"/quantity"`},
		{name: "unknown field", method: "POST", path: "/v1/stock-items/p1/replenishments", contentType: ct, body: `{"quantity":1,"qty":2}`, wantStatus: 422},
		{name: "string quantity", method: "POST", path: "/v1/stock-items/p1/replenishments", contentType: ct, body: `{"quantity":"5"}`, wantStatus: 422},
		{name: "fraction", method: "POST", path: "/v1/stock-items/p1/replenishments", contentType: ct, body: `{"quantity":1.5}`, wantStatus: 422},
		{name: "overflow", method: "POST", path: "/v1/stock-items/p1/replenishments", contentType: ct, body: `{"quantity":99999999999999999999999}`, wantStatus: 422},
		{name: "zero", method: "POST", path: "/v1/stock-items/p1/replenishments", contentType: ct, body: `{"quantity":0}`, wantStatus: 422},
		{name: "negative", method: "POST", path: "/v1/stock-items/p1/replenishments", contentType: ct, body: `{"quantity":-3}`, wantStatus: 422},
		{name: "too many", method: "POST", path: "/v1/stock-items/p1/replenishments", contentType: ct, body: `{"quantity":1000001}`, wantStatus: 422},
		{name: "too large body", method: "POST", path: "/v1/stock-items/p1/replenishments", contentType: ct,
			body: `{"quantity":1,"pad":"` + strings.Repeat("x", 5000) + `"}`, wantStatus: 413},
		{name: "unknown product", method: "POST", path: "/v1/stock-items/nope/replenishments", contentType: ct, body: `{"quantity":1}`, wantStatus: 404},
		{name: "retired product", method: "POST", path: "/v1/stock-items/retired/replenishments", contentType: ct, body: `{"quantity":1}`,
			wantStatus: 409, wantIn: "state-conflict"},
		{name: "store failure is a 500 without detail", method: "GET", path: "/v1/stock-items/p1", fail: errors.New("db on fire"),
			wantStatus: 500, wantType: "application/problem+json"},
		{name: "database down is a 503", method: "GET", path: "/v1/stock-items/p1", fail: fmt.Errorf("stock items: begin: %w", mysql.ErrInvalidConn),
			wantStatus: 503, wantType: "application/problem+json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newFakeStore()
			store.fail = tt.fail
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			rec := httptest.NewRecorder()
			newServer(store).ServeHTTP(rec, req)
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, body)
			}
			ctype := rec.Header().Get("Content-Type")
			if tt.wantType != "" && ctype != tt.wantType {
				t.Fatalf("Content-Type %q, want %q", ctype, tt.wantType)
			}
			if rec.Code >= 400 && ctype != "application/problem+json" {
				t.Fatalf("error with Content-Type %q", ctype)
			}
			if tt.wantIn != "" && !strings.Contains(string(body), tt.wantIn) {
				t.Fatalf("body lacks %s: %s", tt.wantIn, body)
			}
			if strings.Contains(string(body), "on fire") {
				t.Fatalf("internal error leaked: %s", body)
			}
			if rec.Code == 405 && rec.Header().Get("Allow") == "" {
				t.Fatal("405 without Allow")
			}
			if rec.Code == 201 {
				if loc := rec.Header().Get("Location"); loc != "http://gw.test/inventory/v1/replenishments/r-1" {
					t.Fatalf("Location %q", loc)
				}
			}
			var doc map[string]any
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatalf("body is not JSON: %s", body)
			}
		})
	}
}

func TestStockItemETag(t *testing.T) {
	rec := httptest.NewRecorder()
	newServer(newFakeStore()).ServeHTTP(rec, httptest.NewRequest("GET", "/v1/stock-items/p1", nil))
	if got := rec.Header().Get("ETag"); got != `"4"` {
		t.Fatalf("ETag %q", got)
	}
}

// FuzzReplenishmentBody: no body, however malformed, yields a 5xx or a panic.
func FuzzReplenishmentBody(f *testing.F) {
	for _, s := range []string{`{"quantity":1}`, `{"quantity":-1}`, `{`, `[]`, `{"quantity":1e400}`, "\x00", `{"quantity":null}`} {
		f.Add(s)
	}
	h := newServer(newFakeStore())
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", "/v1/stock-items/p1/replenishments", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%d for %q", rec.Code, body)
		}
		if rec.Code != 201 && rec.Code != 400 && rec.Code != 413 && rec.Code != 422 {
			t.Fatal(fmt.Sprintf("unexpected status %d", rec.Code))
		}
	})
}
