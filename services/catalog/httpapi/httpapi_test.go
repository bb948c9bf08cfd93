package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/problem"
	"github.com/sagittarius-a/sagittarius/services/catalog/product"
)

// memStore is an in-memory product.Store for the HTTP tests; the MySQL store
// has its own tests against MariaDB.
type memStore struct {
	mu sync.Mutex
	m  map[string]product.Product
}

func (s *memStore) Create(_ context.Context, p product.Product) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.m {
		if o.SKU == p.SKU {
			return product.ErrSKUTaken
		}
	}
	s.m[p.ID] = p
	return nil
}

func (s *memStore) Get(_ context.Context, id string) (product.Product, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[id]
	if !ok {
		return p, product.ErrNotFound
	}
	return p, nil
}

func (s *memStore) Update(_ context.Context, id string, change func(*product.Product) (product.Outcome, error)) (product.Product, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[id]
	if !ok {
		return p, product.ErrNotFound
	}
	if _, err := change(&p); err != nil {
		return product.Product{}, err
	}
	s.m[id] = p
	return p, nil
}

func (s *memStore) List(_ context.Context, f product.Filter) ([]product.Product, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []product.Product
	for _, p := range s.m {
		if (f.SKU == "" || p.SKU == f.SKU) && (f.Status == "" || p.Status == f.Status) {
			all = append(all, p)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	lo, hi := min(f.Offset, len(all)), min(f.Offset+f.Limit, len(all))
	return all[lo:hi], len(all), nil
}

const (
	base      = "http://gw.test"
	activeID  = "11111111-1111-4111-8111-111111111111"
	retiredID = "22222222-2222-4222-8222-222222222222"
	js        = "application/json"
)

// newTestServer returns the API's handler on a memStore holding an active
// product (activeID, SKU MUG-1, 5.00 EUR, version 1) and a retired one.
func newTestServer(t testing.TB) (http.Handler, *memStore) {
	t.Helper()
	store := &memStore{m: map[string]product.Product{}}
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	p, err := product.Add(activeID, "MUG-1", "Mug", "", product.Money{Amount: 500, Currency: "EUR"}, now)
	if err != nil {
		t.Fatal(err)
	}
	store.m[p.ID] = p
	r := p
	r.ID, r.SKU, r.Status, r.Version = retiredID, "OLD-1", product.StatusRetired, 2
	store.m[r.ID] = r
	api := New(store, NewRenderer(hal.MustBase(base)), slog.New(slog.DiscardHandler))
	n := 0
	api.newID = func() string { n++; return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }
	api.now = func() time.Time { return now }
	return httpkit.Stack(api.Routes(), httpkit.Options{Logger: slog.New(slog.DiscardHandler), MaxBodyBytes: 8192}), store
}

func do(h http.Handler, method, path, ct, body string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestErrorsAndStatuses(t *testing.T) {
	item, old := "/v1/products/"+activeID, "/v1/products/"+retiredID
	const ok = `{"sku":"tee-1","name":"Tee","description":"Cotton","price":{"amount":1999,"currency":"EUR"}}`
	tests := []struct {
		name         string
		method, path string
		ct, body     string
		hdr          []string
		want         int
		wantField    string
	}{
		{"add", "POST", "/v1/products", js, ok, nil, 201, ""},
		{"add without description", "POST", "/v1/products", js, `{"sku":"a","name":"A","price":{"amount":1,"currency":"EUR"}}`, nil, 201, ""},
		{"add duplicate sku", "POST", "/v1/products", js, `{"sku":"mug-1","name":"A","price":{"amount":1,"currency":"EUR"}}`, nil, 409, ""},
		{"add no content type", "POST", "/v1/products", "", ok, nil, 415, ""},
		{"add form", "POST", "/v1/products", "application/x-www-form-urlencoded", "sku=a", nil, 415, ""},
		{"add malformed", "POST", "/v1/products", js, `{"sku":"a",`, nil, 400, ""},
		{"add empty", "POST", "/v1/products", js, ``, nil, 400, ""},
		{"add trailing", "POST", "/v1/products", js, ok + `]`, nil, 400, ""},
		{"add too large", "POST", "/v1/products", js, `{"description":"` + strings.Repeat("d", 9000) + `"}`, nil, 413, ""},
		{"add unknown field", "POST", "/v1/products", js, `{"sku":"a","name":"A","price":{"amount":1,"currency":"EUR"},"stock":3}`, nil, 422, "/stock"},
		{"add unknown price field", "POST", "/v1/products", js, `{"sku":"a","name":"A","price":{"amount":1,"currency":"EUR","vat":2}}`, nil, 422, "/vat"},
		{"add price as string", "POST", "/v1/products", js, `{"sku":"a","name":"A","price":"1.00"}`, nil, 422, "/price"},
		{"add fractional amount", "POST", "/v1/products", js, `{"sku":"a","name":"A","price":{"amount":1.5,"currency":"EUR"}}`, nil, 422, "/price/amount"},
		{"add huge amount", "POST", "/v1/products", js, `{"sku":"a","name":"A","price":{"amount":99999999999999999999,"currency":"EUR"}}`, nil, 422, "/price/amount"},
		{"add zero price", "POST", "/v1/products", js, `{"sku":"a","name":"A","price":{"amount":0,"currency":"EUR"}}`, nil, 422, "/price/amount"},
		{"add other currency", "POST", "/v1/products", js, `{"sku":"a","name":"A","price":{"amount":1,"currency":"USD"}}`, nil, 422, "/price/currency"},
		{"add bad sku", "POST", "/v1/products", js, `{"sku":"a b","name":"A","price":{"amount":1,"currency":"EUR"}}`, nil, 422, "/sku"},
		{"add missing name", "POST", "/v1/products", js, `{"sku":"a","price":{"amount":1,"currency":"EUR"}}`, nil, 422, "/name"},
		{"get", "GET", item, "", "", nil, 200, ""},
		{"get retired", "GET", old, "", "", nil, 200, ""},
		{"get unknown", "GET", "/v1/products/33333333-3333-4333-8333-333333333333", "", "", nil, 404, ""},
		{"get not an id", "GET", "/v1/products/MUG-1", "", "", nil, 404, ""},
		{"put", "PUT", item, js, `{}`, nil, 405, ""},
		{"delete", "DELETE", item, "", "", nil, 405, ""},
		{"post item", "POST", item, js, `{}`, nil, 405, ""},
		{"unknown collection", "GET", "/v1/items", "", "", nil, 404, ""},
		{"too deep", "GET", item + "/prices", "", "", nil, 404, ""},
		{"patch price", "PATCH", item, js, `{"price":{"amount":650,"currency":"EUR"}}`, []string{"If-Match", `"1"`}, 200, ""},
		{"patch details", "PATCH", item, "application/merge-patch+json", `{"name":"Big mug","description":"400 ml"}`, nil, 200, ""},
		{"retire", "PATCH", item, js, `{"status":"retired"}`, nil, 200, ""},
		{"re-retire", "PATCH", old, js, `{"status":"retired"}`, nil, 200, ""},
		{"patch retired", "PATCH", old, js, `{"price":{"amount":1,"currency":"EUR"}}`, nil, 409, ""},
		{"reactivate", "PATCH", old, js, `{"status":"active"}`, nil, 409, ""},
		{"patch stale", "PATCH", item, js, `{"name":"X"}`, []string{"If-Match", `"0"`}, 412, ""},
		{"patch null price", "PATCH", item, js, `{"price":null}`, nil, 422, "/price"},
		{"patch partial price object", "PATCH", item, js, `{"price":{"amount":5}}`, nil, 422, "/price/currency"},
		{"patch price extra member", "PATCH", item, js, `{"price":{"amount":5,"currency":"EUR","x":1}}`, nil, 422, "/price"},
		{"patch name number", "PATCH", item, js, `{"name":5}`, nil, 422, "/name"},
		{"patch bad status", "PATCH", item, js, `{"status":"gone"}`, nil, 422, "/status"},
		{"patch sku", "PATCH", item, js, `{"sku":"NEW"}`, nil, 422, "/sku"},
		{"patch text", "PATCH", item, "text/plain", `x`, nil, 415, ""},
		{"patch unknown", "PATCH", "/v1/products/33333333-3333-4333-8333-333333333333", js, `{"name":"X"}`, nil, 404, ""},
		{"list bad status", "GET", "/v1/products?status=deleted", "", "", nil, 400, "status"},
		{"list bad sku", "GET", "/v1/products?sku=%C3%A9", "", "", nil, 400, "sku"},
		{"list bad page", "GET", "/v1/products?page=x", "", "", nil, 400, "page"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := newTestServer(t)
			rec := do(h, tt.method, tt.path, tt.ct, tt.body, tt.hdr...)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
			ct := rec.Header().Get("Content-Type")
			if tt.want >= 400 {
				var p problem.Problem
				if ct != problem.ContentType || json.Unmarshal(rec.Body.Bytes(), &p) != nil || p.Status != tt.want {
					t.Fatalf("problem %q %s", ct, rec.Body)
				}
				if tt.wantField != "" && (len(p.Errors) == 0 || p.Errors[0].Field != tt.wantField) {
					t.Fatalf("errors %+v, want field %s", p.Errors, tt.wantField)
				}
				if tt.want == 405 && rec.Header().Get("Allow") == "" {
					t.Fatal("405 without Allow")
				}
				return
			}
			if ct != hal.ContentType || rec.Header().Get("ETag") == "" {
				t.Fatalf("content type %q, ETag %q", ct, rec.Header().Get("ETag"))
			}
		})
	}
}

func TestAddChangeRetire(t *testing.T) {
	h, _ := newTestServer(t)
	rec := do(h, "POST", "/v1/products", js, `{"sku":"tee-1","name":"Tee","price":{"amount":1999,"currency":"EUR"}}`)
	if rec.Code != 201 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	type prod struct {
		ID, SKU, Status string
		Price           struct{ Amount int64 }
		Version         int64
		Links           map[string]struct{ Href string } `json:"_links"`
	}
	var p prod
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	loc := rec.Header().Get("Location")
	if p.SKU != "TEE-1" || p.Links["self"].Href != loc || loc != base+"/catalog/v1/products/"+p.ID ||
		p.Links["stock-item"].Href != base+"/inventory/v1/stock-items/"+p.ID {
		t.Fatalf("product %+v, Location %s", p, loc)
	}
	path := strings.TrimPrefix(loc, base+"/catalog")
	rec = do(h, "PATCH", path, js, `{"price":{"amount":2499,"currency":"EUR"}}`, "If-Match", rec.Header().Get("ETag"))
	_ = json.Unmarshal(rec.Body.Bytes(), &p)
	if rec.Code != 200 || p.Price.Amount != 2499 || p.Version != 2 || rec.Header().Get("ETag") != `"2"` {
		t.Fatalf("price change: %d %+v", rec.Code, p)
	}
	rec = do(h, "PATCH", path, js, `{"status":"retired"}`, "If-Match", `"2"`)
	_ = json.Unmarshal(rec.Body.Bytes(), &p)
	if rec.Code != 200 || p.Status != "retired" || p.Version != 3 {
		t.Fatalf("retire: %d %+v", rec.Code, p)
	}
	if rec = do(h, "PATCH", path, js, `{"name":"Again"}`); rec.Code != 409 {
		t.Fatalf("change after retire: %d", rec.Code)
	}
}

func TestListPaginationAndFilters(t *testing.T) {
	h, _ := newTestServer(t)
	type doc struct {
		Links    map[string]struct{ Href string } `json:"_links"`
		Embedded struct {
			Products []struct{ ID, Status string } `json:"products"`
		} `json:"_embedded"`
		Total int
	}
	get := func(q string) doc {
		t.Helper()
		rec := do(h, "GET", "/v1/products"+q, "", "")
		var d doc
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &d) != nil {
			t.Fatalf("GET %s: %d %s", q, rec.Code, rec.Body)
		}
		return d
	}
	coll := base + "/catalog/v1/products"
	d := get("?size=1")
	if d.Total != 2 || len(d.Embedded.Products) != 1 || d.Links["next"].Href != coll+"?page=2&size=1" || d.Links["prev"].Href != "" {
		t.Fatalf("page 1: %+v", d)
	}
	d = get("?status=retired&size=1&page=1")
	if d.Total != 1 || d.Embedded.Products[0].ID != retiredID || d.Links["last"].Href != coll+"?page=1&size=1&status=retired" {
		t.Fatalf("retired: %+v", d)
	}
	d = get("?sku=mug-1")
	if d.Total != 1 || d.Embedded.Products[0].ID != activeID {
		t.Fatalf("sku: %+v", d)
	}
}

// FuzzRequests sends arbitrary methods, paths and bodies through the whole
// handler: no input may produce a 5xx or a panic.
func FuzzRequests(f *testing.F) {
	f.Add("POST", "/v1/products", `{"sku":"a","name":"A","price":{"amount":1,"currency":"EUR"}}`)
	f.Add("PATCH", "/v1/products/"+activeID, `{"price":{"amount":2,"currency":"EUR"},"status":"retired"}`)
	f.Add("GET", "/v1/products?sku=A&status=active&page=1", ``)
	h, _ := newTestServer(f)
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if method == "" || strings.ContainsAny(method, " \t\r\n()<>@,;:\\\"/[]?={}") || len(method) > 10 {
			method = "POST"
		}
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t#") {
			path = "/v1/products"
		}
		req, err := http.NewRequest(method, "http://svc"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", js)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, rec.Code, rec.Body)
		}
	})
}
