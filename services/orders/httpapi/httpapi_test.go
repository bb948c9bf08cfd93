package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/auth/authtest"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/problem"
	"github.com/sagittarius-a/sagittarius/services/orders/order"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
)

// fakeStore is an in-memory Store with the same rules as mysql.Store, for
// testing decoding, status codes and rendering without a database.
type fakeStore struct {
	mu     sync.Mutex
	render Renderer
	orders map[string]*order.Order
	keys   map[string]fakeKey
	seq    int
	err    error // returned by every method when set
}

type fakeKey struct {
	in     string
	placed orderevents.Order
}

func newFakeStore(render Renderer) *fakeStore {
	return &fakeStore{render: render, orders: map[string]*order.Order{}, keys: map[string]fakeKey{}}
}

var (
	customers = map[string]*order.Customer{"c1": {ID: "c1", Active: true}}
	products  = map[string]order.Product{
		"p1": {ID: "p1", Name: "Mug", Active: true, Price: &order.Money{Amount: 1250, Currency: "EUR"}},
		"p2": {ID: "p2", Name: "Tea", Active: true, Price: &order.Money{Amount: 399, Currency: "EUR"}},
	}
)

func (s *fakeStore) PlaceOrder(_ context.Context, in order.PlaceInput, key string) (orderevents.Order, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return orderevents.Order{}, false, s.err
	}
	fp := fmt.Sprintf("%+v", in)
	if k, ok := s.keys[key]; ok && key != "" {
		if k.in != fp {
			return orderevents.Order{}, false, order.ErrKeyReused
		}
		return k.placed, true, nil
	}
	s.seq++
	o, err := order.Place(fmt.Sprintf("o%d", s.seq), in, customers[in.CustomerID], products, time.Unix(1e9, 0))
	if err != nil {
		return orderevents.Order{}, false, err
	}
	s.orders[o.ID] = o
	placed := s.render.Order(o)
	if key != "" {
		s.keys[key] = fakeKey{in: fp, placed: placed}
	}
	return placed, false, nil
}

func (s *fakeStore) Order(_ context.Context, id string) (*order.Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	o, ok := s.orders[id]
	if !ok {
		return nil, order.ErrNotFound
	}
	c := *o
	return &c, nil
}

func (s *fakeStore) Orders(_ context.Context, f order.Filter) ([]*order.Order, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, 0, s.err
	}
	var all []*order.Order
	for i := 1; i <= s.seq; i++ {
		o, ok := s.orders[fmt.Sprintf("o%d", i)]
		if ok && (f.CustomerID == "" || o.CustomerID == f.CustomerID) && (f.Status == "" || o.Status == f.Status) {
			all = append(all, o)
		}
	}
	page := all[min(f.Offset, len(all)):min(f.Offset+f.Limit, len(all))]
	return page, len(all), nil
}

func (s *fakeStore) CancelOrder(_ context.Context, id string, ifMatch func(int64) bool) (*order.Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	o, ok := s.orders[id]
	if !ok {
		return nil, order.ErrNotFound
	}
	if !ifMatch(int64(o.Version)) {
		return nil, order.ErrVersionMismatch
	}
	if err := o.Cancel(order.ReasonCustomerRequested, time.Unix(2e9, 0)); err != nil {
		return nil, err
	}
	c := *o
	return &c, nil
}

const base = "http://gw.test"

func newServer(t testing.TB) (*fakeStore, http.Handler) {
	t.Helper()
	render := NewRenderer(hal.MustBase(base))
	store := newFakeStore(render)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := httpkit.Stack(authtest.Caller(New(store, render, logger).Routes()), httpkit.Options{Logger: logger, MaxBodyBytes: 64 << 10})
	return store, h
}

const validBody = `{"customer_id":"c1","lines":[{"product_id":"p1","quantity":2},{"product_id":"p2","quantity":1}],
	"payment_method_id":"tok_visa","shipping_address":{"name":"Ada","line1":"1 Main St","postal_code":"10115","city":"Berlin","country":"DE"}}`

type request struct {
	method, path, body string
	header             map[string]string
}

func do(t *testing.T, h http.Handler, rq request) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(rq.method, rq.path, strings.NewReader(rq.body))
	if rq.body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range rq.header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func decodeProblem(t *testing.T, w *httptest.ResponseRecorder) problem.Problem {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("Content-Type %q, want %s; body %s", ct, problem.ContentType, w.Body)
	}
	var p problem.Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if p.Status != w.Code || p.Title == "" || p.Type == "" {
		t.Errorf("problem %+v does not match status %d", p, w.Code)
	}
	return p
}

func TestPlaceOrderRequests(t *testing.T) {
	tests := []struct {
		name   string
		rq     request
		status int
		field  string // expected field error, if any
	}{
		{name: "created", rq: request{body: validBody}, status: 201},
		{name: "no content type", rq: request{body: validBody, header: map[string]string{"Content-Type": ""}}, status: 415},
		{name: "text/plain", rq: request{body: validBody, header: map[string]string{"Content-Type": "text/plain"}}, status: 415},
		{name: "latin-1", rq: request{body: validBody, header: map[string]string{"Content-Type": "application/json; charset=latin1"}}, status: 415},
		{name: "empty body", rq: request{body: "", header: map[string]string{"Content-Type": "application/json"}}, status: 400},
		{name: "not json", rq: request{body: "{customer"}, status: 400},
		{name: "two values", rq: request{body: validBody + validBody}, status: 400},
		{name: "array", rq: request{body: "[]"}, status: 422},
		{name: "unknown field", rq: request{body: `{"customer_id":"c1","coupon":"X"}`}, status: 422, field: "/coupon"},
		{name: "quantity is a string", rq: request{body: `{"lines":[{"product_id":"p1","quantity":"2"}]}`}, status: 422, field: "/lines/quantity"},
		{name: "quantity is fractional", rq: request{body: `{"lines":[{"product_id":"p1","quantity":1.5}]}`}, status: 422},
		{name: "quantity overflows", rq: request{body: `{"lines":[{"product_id":"p1","quantity":1e40}]}`}, status: 422},
		{name: "no address", rq: request{body: `{"customer_id":"c1","lines":[{"product_id":"p1","quantity":1}],"payment_method_id":"t"}`}, status: 422, field: "/shipping_address/line1"},
		{name: "quantity zero", rq: request{body: strings.Replace(validBody, `"quantity":2`, `"quantity":0`, 1)}, status: 422, field: "/lines/0/quantity"},
		{name: "quantity 1001", rq: request{body: strings.Replace(validBody, `"quantity":2`, `"quantity":1001`, 1)}, status: 422, field: "/lines/0/quantity"},
		{name: "unknown customer", rq: request{body: strings.Replace(validBody, `"c1"`, `"c9"`, 1)}, status: 422, field: "/customer_id"},
		{name: "unknown product", rq: request{body: strings.Replace(validBody, `"p2"`, `"p9"`, 1)}, status: 422, field: "/lines/1/product_id"},
		{name: "bad idempotency key", rq: request{body: validBody, header: map[string]string{"Idempotency-Key": "a b"}}, status: 400, field: "Idempotency-Key"},
		{name: "long idempotency key", rq: request{body: validBody, header: map[string]string{"Idempotency-Key": strings.Repeat("k", 192)}}, status: 400},
		{name: "too large", rq: request{body: `{"customer_id":"` + strings.Repeat("x", 70<<10) + `"}`}, status: 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, h := newServer(t)
			tt.rq.method, tt.rq.path = "POST", "/v1/orders"
			w := do(t, h, tt.rq)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d; body %s", w.Code, tt.status, w.Body)
			}
			if tt.status == 201 {
				var o orderevents.Order
				if err := json.Unmarshal(w.Body.Bytes(), &o); err != nil {
					t.Fatal(err)
				}
				if w.Header().Get("Location") != base+"/orders/v1/orders/"+o.ID || w.Header().Get("ETag") != `"1"` {
					t.Errorf("Location %q ETag %q", w.Header().Get("Location"), w.Header().Get("ETag"))
				}
				if w.Header().Get("Content-Type") != hal.ContentType || o.Status != "pending" || o.Total.Amount != 2899 {
					t.Errorf("got %s %+v", w.Header().Get("Content-Type"), o)
				}
				return
			}
			p := decodeProblem(t, w)
			if tt.field != "" {
				found := false
				for _, f := range p.Errors {
					found = found || f.Field == tt.field
				}
				if !found {
					t.Errorf("no error for field %s in %+v", tt.field, p.Errors)
				}
			}
		})
	}
}

func TestPlaceOrderIdempotencyKey(t *testing.T) {
	store, h := newServer(t)
	key := map[string]string{"Idempotency-Key": `"k-1"`}
	first := do(t, h, request{method: "POST", path: "/v1/orders", body: validBody, header: key})
	if first.Code != 201 || first.Header().Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %v", first.Code, first.Header())
	}
	// The same request, formatted differently: the first answer again.
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(validBody)); err != nil {
		t.Fatal(err)
	}
	again := do(t, h, request{method: "POST", path: "/v1/orders", body: compact.String(), header: map[string]string{"Idempotency-Key": "k-1"}})
	if again.Code != 201 || again.Body.String() != first.Body.String() || again.Header().Get("Location") != first.Header().Get("Location") {
		t.Fatalf("replay: %d %s\nfirst: %s", again.Code, again.Body, first.Body)
	}
	if again.Header().Get("Idempotent-Replayed") != "true" {
		t.Error("replay not marked Idempotent-Replayed")
	}
	if len(store.orders) != 1 {
		t.Errorf("%d orders placed, want 1", len(store.orders))
	}
	// A different request with the same key.
	other := do(t, h, request{method: "POST", path: "/v1/orders", body: strings.Replace(validBody, `"quantity":2`, `"quantity":3`, 1), header: key})
	if other.Code != 422 {
		t.Fatalf("reused key: %d %s", other.Code, other.Body)
	}
	decodeProblem(t, other)
	// Without a key, each POST places an order.
	do(t, h, request{method: "POST", path: "/v1/orders", body: validBody})
	if len(store.orders) != 2 {
		t.Errorf("%d orders placed, want 2", len(store.orders))
	}
}

func place(t *testing.T, h http.Handler) orderevents.Order {
	t.Helper()
	w := do(t, h, request{method: "POST", path: "/v1/orders", body: validBody})
	if w.Code != 201 {
		t.Fatalf("place: %d %s", w.Code, w.Body)
	}
	var o orderevents.Order
	if err := json.Unmarshal(w.Body.Bytes(), &o); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestGetOrder(t *testing.T) {
	_, h := newServer(t)
	o := place(t, h)
	w := do(t, h, request{method: "GET", path: "/v1/orders/" + o.ID})
	if w.Code != 200 || w.Header().Get("ETag") != `"1"` || w.Header().Get("Content-Type") != hal.ContentType {
		t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
	}
	var got struct {
		Links map[string]json.RawMessage `json:"_links"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]string{
		"self":        `{"href":"http://gw.test/orders/v1/orders/` + o.ID + `"}`,
		"customer":    `{"href":"http://gw.test/customers/v1/customers/c1"}`,
		"products":    `[{"href":"http://gw.test/catalog/v1/products/p1"},{"href":"http://gw.test/catalog/v1/products/p2"}]`,
		"reservation": `{"href":"http://gw.test/inventory/v1/reservations/` + o.ID + `"}`,
	} {
		if string(got.Links[rel]) != want {
			t.Errorf("link %s = %s, want %s", rel, got.Links[rel], want)
		}
	}
	if _, ok := got.Links["payment"]; ok {
		t.Error("payment link before the payment is known")
	}
	if w := do(t, h, request{method: "GET", path: "/v1/orders/nope"}); w.Code != 404 {
		t.Errorf("unknown order: %d", w.Code)
	} else {
		decodeProblem(t, w)
	}
}

func TestRenderPaymentAndShipmentLinks(t *testing.T) {
	r := NewRenderer(hal.MustBase(base))
	o := r.Order(&order.Order{ID: "o1", CustomerID: "c1", PaymentID: "pay1", ShipmentID: "s1", Status: order.StatusShipped})
	if o.Links.Href("payment") != base+"/payments/v1/payments/pay1" || o.Links.Href("shipment") != base+"/shipping/v1/shipments/s1" {
		t.Errorf("links %+v", o.Links)
	}
}

func TestListOrders(t *testing.T) {
	store, h := newServer(t)
	for range 5 {
		place(t, h)
	}
	store.orders["o2"].Status = order.StatusCancelled
	tests := []struct {
		query       string
		status      int
		count       int
		total       int
		rels        []string
		missingRels []string
	}{
		{query: "", status: 200, count: 5, total: 5, rels: []string{"self", "first", "last"}, missingRels: []string{"prev", "next"}},
		{query: "?size=2", status: 200, count: 2, total: 5, rels: []string{"self", "first", "last", "next"}, missingRels: []string{"prev"}},
		{query: "?size=2&page=2", status: 200, count: 2, total: 5, rels: []string{"prev", "next"}},
		{query: "?size=2&page=3", status: 200, count: 1, total: 5, rels: []string{"prev"}, missingRels: []string{"next"}},
		{query: "?status=cancelled", status: 200, count: 1, total: 1},
		{query: "?customer_id=c1&status=pending", status: 200, count: 4, total: 4},
		{query: "?customer_id=c2", status: 200, count: 0, total: 0},
		{query: "?status=lost", status: 400},
		{query: "?status=pending&status=cancelled", status: 400},
		{query: "?customer_id=", status: 400},
		{query: "?page=0", status: 400},
		{query: "?size=101", status: 400},
		{query: "?page=x", status: 400},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			w := do(t, h, request{method: "GET", path: "/v1/orders" + tt.query})
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.status != 200 {
				decodeProblem(t, w)
				return
			}
			var c hal.Collection[orderevents.Order]
			if err := json.Unmarshal(w.Body.Bytes(), &c); err != nil {
				t.Fatal(err)
			}
			if len(c.Embedded["orders"]) != tt.count || c.Total != tt.total {
				t.Errorf("%d items, total %d; want %d, %d", len(c.Embedded["orders"]), c.Total, tt.count, tt.total)
			}
			for _, rel := range tt.rels {
				if c.Links.Href(rel) == "" {
					t.Errorf("missing link %s", rel)
				}
			}
			for _, rel := range tt.missingRels {
				if c.Links.Href(rel) != "" {
					t.Errorf("unexpected link %s", rel)
				}
			}
			if strings.Contains(tt.query, "status=") && !strings.Contains(c.Links.Href("next")+c.Links.Href("self"), "status=") {
				t.Errorf("filter lost in links: %s", c.Links.Href("self"))
			}
		})
	}
}

func TestCancelOrder(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		header  map[string]string
		setup   func(o *order.Order)
		missing bool
		status  int
	}{
		{name: "cancelled", body: `{"status":"cancelled"}`, status: 200},
		{name: "with matching If-Match", body: `{"status":"cancelled"}`, header: map[string]string{"If-Match": `"1"`}, status: 200},
		{name: "merge-patch content type", body: `{"status":"cancelled"}`, header: map[string]string{"Content-Type": "application/merge-patch+json"}, status: 200},
		{name: "stale If-Match", body: `{"status":"cancelled"}`, header: map[string]string{"If-Match": `"7"`}, status: 412},
		{name: "weak If-Match", body: `{"status":"cancelled"}`, header: map[string]string{"If-Match": `W/"1"`}, status: 412},
		{name: "already shipped", body: `{"status":"cancelled"}`, setup: func(o *order.Order) { o.Status = order.StatusShipped }, status: 409},
		{name: "already cancelled", body: `{"status":"cancelled"}`, setup: func(o *order.Order) { o.Status = order.StatusCancelled }, status: 409},
		{name: "unknown order", body: `{"status":"cancelled"}`, missing: true, status: 404},
		{name: "other status", body: `{"status":"confirmed"}`, status: 422},
		{name: "no status", body: `{}`, status: 422},
		{name: "status null", body: `{"status":null}`, status: 422},
		{name: "status number", body: `{"status":1}`, status: 422},
		{name: "unknown field", body: `{"status":"cancelled","reason":"x"}`, status: 422},
		{name: "not json", body: `status=cancelled`, status: 400},
		{name: "wrong content type", body: `{"status":"cancelled"}`, header: map[string]string{"Content-Type": "text/plain"}, status: 415},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, h := newServer(t)
			o := place(t, h)
			if tt.setup != nil {
				tt.setup(store.orders[o.ID])
			}
			id := o.ID
			if tt.missing {
				id = "nope"
			}
			w := do(t, h, request{method: "PATCH", path: "/v1/orders/" + id, body: tt.body, header: tt.header})
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.status != 200 {
				decodeProblem(t, w)
				return
			}
			var got orderevents.Order
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got.Status != "cancelled" || got.CancellationReason != "customer_requested" || w.Header().Get("ETag") != `"2"` {
				t.Errorf("got %s/%s ETag %s", got.Status, got.CancellationReason, w.Header().Get("ETag"))
			}
		})
	}
}

func TestRoutingProblems(t *testing.T) {
	_, h := newServer(t)
	for _, tt := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"DELETE", "/v1/orders/o1", 405, "GET, HEAD, OPTIONS, PATCH"},
		{"PUT", "/v1/orders", 405, "GET, HEAD, OPTIONS, POST"},
		{"GET", "/v1/order", 404, ""},
		{"GET", "/v2/orders", 404, ""},
		{"GET", "/v1/orders/o1/lines", 404, ""},
	} {
		w := do(t, h, request{method: tt.method, path: tt.path})
		if w.Code != tt.status {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, w.Code, tt.status)
			continue
		}
		decodeProblem(t, w)
		if tt.allow != "" && w.Header().Get("Allow") != tt.allow {
			t.Errorf("%s %s: Allow %q, want %q", tt.method, tt.path, w.Header().Get("Allow"), tt.allow)
		}
	}
	w := do(t, h, request{method: "GET", path: "/v1"})
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"orders":{"href":"http://gw.test/orders/v1/orders"}`) {
		t.Errorf("index: %d %s", w.Code, w.Body)
	}
}

func TestErrorMapping(t *testing.T) {
	a := New(nil, NewRenderer(hal.MustBase(base)), slog.New(slog.NewTextHandler(io.Discard, nil)))
	r := httptest.NewRequest("GET", "/v1/orders/x", nil)
	for _, tt := range []struct {
		err    error
		status int
	}{
		{fmt.Errorf("read: %w", order.ErrNotFound), 404},
		{fmt.Errorf("x: %w", order.ErrNotCancellable), 409},
		{fmt.Errorf("x: %w", order.ErrVersionMismatch), 412},
		{fmt.Errorf("x: %w", order.ErrKeyReused), 422},
		{&order.ValidationError{Fields: []order.FieldError{{Field: "/lines", Message: "m"}}}, 422},
		{fmt.Errorf("wrapped: %w", problem.New(http.StatusUnsupportedMediaType, "x")), 415},
		{errors.New("database on fire"), 500},
	} {
		w := httptest.NewRecorder()
		a.fail(w, r, tt.err)
		if w.Code != tt.status {
			t.Errorf("%v: %d, want %d", tt.err, w.Code, tt.status)
		}
		p := decodeProblem(t, w)
		if tt.status == 500 && strings.Contains(p.Detail, "fire") {
			t.Error("500 leaks the cause")
		}
	}
}

func TestStoreFailureIs500(t *testing.T) {
	store, h := newServer(t)
	store.err = errors.New("connection refused")
	for _, rq := range []request{
		{method: "POST", path: "/v1/orders", body: validBody},
		{method: "GET", path: "/v1/orders"},
		{method: "GET", path: "/v1/orders/o1"},
		{method: "PATCH", path: "/v1/orders/o1", body: `{"status":"cancelled"}`},
	} {
		if w := do(t, h, rq); w.Code != 500 {
			t.Errorf("%s %s: %d", rq.method, rq.path, w.Code)
		}
	}
}

func TestIdempotencyKeyHeader(t *testing.T) {
	for _, tt := range []struct {
		values []string
		want   string
		ok     bool
	}{
		{nil, "", true},
		{[]string{"abc"}, "abc", true},
		{[]string{`"abc"`}, "abc", true},
		{[]string{" 8e0f-11 "}, "8e0f-11", true},
		{[]string{""}, "", false},
		{[]string{`""`}, "", false},
		{[]string{"a", "b"}, "", false},
		{[]string{"é"}, "", false},
		{[]string{`a"b`}, "", false},
	} {
		h := http.Header{}
		for _, v := range tt.values {
			h.Add("Idempotency-Key", v)
		}
		got, err := idempotencyKey(h)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("%q: got %q, %v", tt.values, got, err)
		}
	}
}

// FuzzPlaceOrder sends arbitrary bodies to POST /v1/orders: every answer is
// 201 or a 4xx problem, never a 5xx or a panic.
func FuzzPlaceOrder(f *testing.F) {
	for _, s := range []string{validBody, `{}`, `[]`, `null`, `{"lines":[null]}`, `{"shipping_address":null}`,
		`{"lines":[{"quantity":-9223372036854775808}]}`, "\xff", `{"customer_id":"\u0000"}`} {
		f.Add(s)
	}
	_, h := newServer(f)
	f.Fuzz(func(t *testing.T, body string) {
		w := do(t, h, request{method: "POST", path: "/v1/orders", body: body, header: map[string]string{"Content-Type": "application/json"}})
		if w.Code != 201 && (w.Code < 400 || w.Code > 499) {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
	})
}

// FuzzPatchOrder does the same for PATCH /v1/orders/{id}.
func FuzzPatchOrder(f *testing.F) {
	for _, s := range []string{`{"status":"cancelled"}`, `{"status":"x"}`, `{"status":[]}`, `{`, ``} {
		f.Add(s, `"1"`)
	}
	_, h := newServer(f)
	f.Fuzz(func(t *testing.T, body, ifMatch string) {
		w := do(t, h, request{method: "PATCH", path: "/v1/orders/o1", body: body,
			header: map[string]string{"Content-Type": "application/json", "If-Match": ifMatch}})
		if w.Code >= 500 {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
	})
}

// TestManifestExamplesAreAccepted sends the request examples of the
// service's OpenAPI manifest to the API: an example a client copies must not
// be refused by the service's own rules.
func TestManifestExamplesAreAccepted(t *testing.T) {
	_, h := newServer(t)
	api := New(nil, NewRenderer(hal.MustBase("http://gw.test")), nil)
	m, err := contracts.Generate(api.Contract(nil))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			RequestBody struct {
				Content map[string]struct {
					Example json.RawMessage `json:"example"`
				} `json:"content"`
			} `json:"requestBody"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(m.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	example := func(path, method string) string {
		ex := doc.Paths[path][method].RequestBody.Content["application/json"].Example
		if len(ex) == 0 {
			t.Fatalf("no example for %s %s", method, path)
		}
		return string(ex)
	}
	o := place(t, h)
	if w := do(t, h, request{method: "PATCH", path: "/v1/orders/" + o.ID, body: example("/v1/orders/{id}", "patch")}); w.Code != 200 {
		t.Errorf("PATCH with the manifest's example: %d %s", w.Code, w.Body)
	}
}

// TestCustomersSeeOnlyTheirOwnOrders: a customer's order is placed for them
// whatever the body says; another customer reads, cancels or lists it as if
// it did not exist (404, an empty page); staff see it.
func TestCustomersSeeOnlyTheirOwnOrders(t *testing.T) {
	_, h := newServer(t)
	ann := map[string]string{"X-Test-Customer": "c1"}
	bob := map[string]string{"X-Test-Customer": "c2"}
	body := strings.Replace(validBody, `"customer_id":"c1"`, `"customer_id":"c2"`, 1) // claims to be bob
	res := do(t, h, request{"POST", "/v1/orders", body, ann})
	if res.Code != http.StatusCreated {
		t.Fatalf("place: %d %s", res.Code, res.Body)
	}
	var o struct {
		ID         string `json:"id"`
		CustomerID string `json:"customer_id"`
	}
	json.Unmarshal(res.Body.Bytes(), &o)
	if o.CustomerID != "c1" {
		t.Fatalf("the order is for %q, want the token's customer c1", o.CustomerID)
	}
	missing := do(t, h, request{"GET", "/v1/orders/no-such-order", "", bob})
	for _, rq := range []request{
		{"GET", "/v1/orders/" + o.ID, "", bob},
		{"PATCH", "/v1/orders/" + o.ID, `{"status":"cancelled"}`, bob},
	} {
		got := do(t, h, rq)
		if got.Code != http.StatusNotFound || got.Body.String() != strings.Replace(missing.Body.String(), "no-such-order", o.ID, 1) {
			t.Errorf("%s as another customer: %d %s (a missing order: %s)", rq.method, got.Code, got.Body, missing.Body)
		}
	}
	for path, want := range map[string]string{"/v1/orders": `"total":0`, "/v1/orders?customer_id=c1": `"total":0`} {
		if got := do(t, h, request{"GET", path, "", bob}); got.Code != 200 || !strings.Contains(got.Body.String(), want) {
			t.Errorf("GET %s as another customer: %d %s", path, got.Code, got.Body)
		}
	}
	if got := do(t, h, request{"GET", "/v1/orders", "", ann}); !strings.Contains(got.Body.String(), `"total":1`) {
		t.Errorf("own list: %s", got.Body)
	}
	if got := do(t, h, request{"GET", "/v1/orders/" + o.ID, "", nil}); got.Code != 200 {
		t.Errorf("staff: %d", got.Code)
	}
}

// TestIdempotencyKeysAreScopedToTheCaller: the same Idempotency-Key from
// another caller places that caller's own order; it never replays the first
// caller's answer.
func TestIdempotencyKeysAreScopedToTheCaller(t *testing.T) {
	_, h := newServer(t)
	first := do(t, h, request{"POST", "/v1/orders", validBody, map[string]string{"X-Test-Customer": "c1", "Idempotency-Key": "k-1"}})
	again := do(t, h, request{"POST", "/v1/orders", validBody, map[string]string{"X-Test-Customer": "c1", "Idempotency-Key": "k-1"}})
	other := do(t, h, request{"POST", "/v1/orders", validBody, map[string]string{"Idempotency-Key": "k-1"}}) // staff, for c1
	if first.Code != 201 || again.Header().Get("Idempotent-Replayed") != "true" || again.Body.String() != first.Body.String() {
		t.Fatalf("the same caller's retry: %d %q", again.Code, again.Header().Get("Idempotent-Replayed"))
	}
	if other.Code != 201 || other.Header().Get("Idempotent-Replayed") != "" || other.Header().Get("Location") == first.Header().Get("Location") {
		t.Fatalf("another caller with the same key: %d %q %s", other.Code, other.Header().Get("Idempotent-Replayed"), other.Body)
	}
}
