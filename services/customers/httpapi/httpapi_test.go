package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/auth/authtest"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/problem"
	"github.com/sagittarius-a/sagittarius/services/customers/customer"
)

// memStore is an in-memory customer.Store for the HTTP tests; the MySQL store
// has its own tests against MariaDB.
type memStore struct {
	mu sync.Mutex
	m  map[string]customer.Customer
}

func (s *memStore) Create(_ context.Context, c customer.Customer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.m {
		if o.Email == c.Email {
			return customer.ErrEmailTaken
		}
	}
	s.m[c.ID] = c
	return nil
}

func (s *memStore) Get(_ context.Context, id string) (customer.Customer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[id]
	if !ok {
		return c, customer.ErrNotFound
	}
	return c, nil
}

func (s *memStore) Update(_ context.Context, id string, change func(*customer.Customer) (bool, error)) (customer.Customer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[id]
	if !ok {
		return c, customer.ErrNotFound
	}
	if _, err := change(&c); err != nil {
		return customer.Customer{}, err
	}
	for _, o := range s.m {
		if o.ID != id && o.Email == c.Email {
			return customer.Customer{}, customer.ErrEmailTaken
		}
	}
	s.m[id] = c
	return c, nil
}

func (s *memStore) Remove(_ context.Context, id string, check func(customer.Customer) error) (customer.Customer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[id]
	if !ok {
		return c, customer.ErrNotFound
	}
	if err := check(c); err != nil {
		return customer.Customer{}, err
	}
	delete(s.m, id)
	return c, nil
}

func (s *memStore) List(_ context.Context, f customer.Filter) ([]customer.Customer, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []customer.Customer
	for _, c := range s.m {
		if (f.Email == "" || c.Email == f.Email) && (f.Status == "" || c.Status == f.Status) {
			all = append(all, c)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	lo, hi := min(f.Offset, len(all)), min(f.Offset+f.Limit, len(all))
	return all[lo:hi], len(all), nil
}

const base = "http://gw.test"

// newTestServer returns the API's handler on a memStore holding one customer
// (id seedID, email seed@example.com, version 1).
func newTestServer(t testing.TB) (http.Handler, *memStore) {
	t.Helper()
	store := &memStore{m: map[string]customer.Customer{}}
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	c, err := customer.Register(seedID, "seed@example.com", "Seed", now)
	if err != nil {
		t.Fatal(err)
	}
	store.m[c.ID] = c
	api := New(store, NewRenderer(hal.MustBase(base)), slog.New(slog.DiscardHandler))
	n := 0
	api.newID = func() string { n++; return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }
	api.now = func() time.Time { return now }
	h := httpkit.Stack(authtest.Caller(api.Routes()), httpkit.Options{Logger: slog.New(slog.DiscardHandler), MaxBodyBytes: 4096})
	return h, store
}

const seedID = "11111111-1111-4111-8111-111111111111"

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

const js = "application/json"

func TestErrorsAndStatuses(t *testing.T) {
	item := "/v1/customers/" + seedID
	tests := []struct {
		name         string
		method, path string
		ct, body     string
		hdr          []string
		want         int
		wantField    string
	}{
		{"register", "POST", "/v1/customers", js, `{"email":"Ann@Example.com","name":"Ann"}`, nil, 201, ""},
		{"register hal+json body", "POST", "/v1/customers", "application/hal+json", `{"email":"b@example.com","name":"B"}`, nil, 201, ""},
		{"register duplicate email", "POST", "/v1/customers", js, `{"email":"SEED@example.com","name":"X"}`, nil, 409, ""},
		{"register no content type", "POST", "/v1/customers", "", `{"email":"a@b.co","name":"A"}`, nil, 415, ""},
		{"register text", "POST", "/v1/customers", "text/plain", `{}`, nil, 415, ""},
		{"register malformed", "POST", "/v1/customers", js, `{"email":`, nil, 400, ""},
		{"register empty", "POST", "/v1/customers", js, ``, nil, 400, ""},
		{"register two docs", "POST", "/v1/customers", js, `{}{}`, nil, 400, ""},
		{"register too large", "POST", "/v1/customers", js, `{"name":"` + strings.Repeat("x", 5000) + `"}`, nil, 413, ""},
		{"register unknown field", "POST", "/v1/customers", js, `{"email":"a@b.co","name":"A","vip":true}`, nil, 422, "/vip"},
		{"register wrong type", "POST", "/v1/customers", js, `{"email":["a"],"name":"A"}`, nil, 422, "/email"},
		{"register bad email", "POST", "/v1/customers", js, `{"email":"not-an-email","name":"A"}`, nil, 422, "/email"},
		{"register display name email", "POST", "/v1/customers", js, `{"email":"Ann <a@b.co>","name":"A"}`, nil, 422, "/email"},
		{"register no name", "POST", "/v1/customers", js, `{"email":"c@b.co"}`, nil, 422, "/name"},
		{"register control char name", "POST", "/v1/customers", js, `{"email":"c@b.co","name":"a\u0000b"}`, nil, 422, "/name"},
		{"register long name", "POST", "/v1/customers", js, `{"email":"c@b.co","name":"` + strings.Repeat("é", 201) + `"}`, nil, 422, "/name"},
		{"register array", "POST", "/v1/customers", js, `[]`, nil, 422, ""},
		{"get", "GET", item, "", "", nil, 200, ""},
		{"get unknown", "GET", "/v1/customers/22222222-2222-4222-8222-222222222222", "", "", nil, 404, ""},
		{"get not a uuid", "GET", "/v1/customers/42", "", "", nil, 404, ""},
		{"get uuid without dashes", "GET", "/v1/customers/11111111111141118111111111111111", "", "", nil, 404, ""},
		{"put not allowed", "PUT", item, js, `{}`, nil, 405, ""},
		{"delete collection not allowed", "DELETE", "/v1/customers", "", "", nil, 405, ""},
		{"unknown path", "GET", "/v1/clients", "", "", nil, 404, ""},
		{"too deep", "GET", item + "/orders", "", "", nil, 404, ""},
		{"patch name", "PATCH", item, "application/merge-patch+json", `{"name":"Seedy"}`, nil, 200, ""},
		{"patch if-match ok", "PATCH", item, js, `{"status":"suspended"}`, []string{"If-Match", `"1"`}, 200, ""},
		{"patch if-match stale", "PATCH", item, js, `{"name":"X"}`, []string{"If-Match", `"7"`}, 412, ""},
		{"patch if-match weak", "PATCH", item, js, `{"name":"X"}`, []string{"If-Match", `W/"1"`}, 412, ""},
		{"patch null", "PATCH", item, js, `{"name":null}`, nil, 422, "/name"},
		{"patch number", "PATCH", item, js, `{"status":1}`, nil, 422, "/status"},
		{"patch removed status", "PATCH", item, js, `{"status":"removed"}`, nil, 422, "/status"},
		{"patch unknown field", "PATCH", item, js, `{"id":"x"}`, nil, 422, "/id"},
		{"patch wrong content type", "PATCH", item, "application/xml", `<a/>`, nil, 415, ""},
		{"patch malformed", "PATCH", item, js, `{`, nil, 400, ""},
		{"patch unknown", "PATCH", "/v1/customers/22222222-2222-4222-8222-222222222222", js, `{"name":"X"}`, nil, 404, ""},
		{"patch email taken", "PATCH", item, js, `{"email":"taken@example.com"}`, nil, 409, ""},
		{"list bad page", "GET", "/v1/customers?page=0", "", "", nil, 400, "page"},
		{"list bad size", "GET", "/v1/customers?size=1000", "", "", nil, 400, "size"},
		{"list bad status", "GET", "/v1/customers?status=removed", "", "", nil, 400, "status"},
		{"list repeated email", "GET", "/v1/customers?email=a@b.co&email=c@d.co", "", "", nil, 400, "email"},
		{"delete stale", "DELETE", item, "", "", []string{"If-Match", `"9"`}, 412, ""},
		{"delete unknown", "DELETE", "/v1/customers/22222222-2222-4222-8222-222222222222", "", "", nil, 404, ""},
		{"delete", "DELETE", item, "", "", []string{"If-Match", `"1"`}, 204, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, store := newTestServer(t)
			store.m["33333333-3333-4333-8333-333333333333"] = customer.Customer{ID: "33333333-3333-4333-8333-333333333333", Email: "taken@example.com", Name: "T", Status: customer.StatusActive, Version: 1}
			rec := do(h, tt.method, tt.path, tt.ct, tt.body, tt.hdr...)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
			ct := rec.Header().Get("Content-Type")
			switch {
			case tt.want == 204:
				if rec.Body.Len() != 0 {
					t.Fatalf("204 with a body: %s", rec.Body)
				}
			case tt.want >= 400:
				if ct != problem.ContentType {
					t.Fatalf("error content type %q", ct)
				}
				var p problem.Problem
				if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != tt.want {
					t.Fatalf("problem %s (%v)", rec.Body, err)
				}
				if tt.wantField != "" && (len(p.Errors) == 0 || p.Errors[0].Field != tt.wantField) {
					t.Fatalf("errors %+v, want field %s", p.Errors, tt.wantField)
				}
				if tt.want == 405 && rec.Header().Get("Allow") == "" {
					t.Fatal("405 without Allow")
				}
			default:
				if ct != hal.ContentType {
					t.Fatalf("content type %q", ct)
				}
			}
		})
	}
}

func TestRegisterThenFollowLinks(t *testing.T) {
	h, _ := newTestServer(t)
	rec := do(h, "POST", "/v1/customers", js, `{"email":" Ann@Example.COM ","name":" Ann Lee "}`)
	if rec.Code != 201 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	loc := rec.Header().Get("Location")
	if loc != base+"/customers/v1/customers/00000000-0000-4000-8000-000000000001" {
		t.Fatalf("Location %q", loc)
	}
	if rec.Header().Get("ETag") != `"1"` {
		t.Fatalf("ETag %q", rec.Header().Get("ETag"))
	}
	var c struct {
		ID, Email, Name, Status string
		Version                 int64
		Links                   map[string]struct{ Href string } `json:"_links"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil {
		t.Fatal(err)
	}
	if c.Email != "ann@example.com" || c.Name != "Ann Lee" || c.Status != "active" || c.Version != 1 {
		t.Fatalf("customer %+v", c)
	}
	if c.Links["self"].Href != loc || c.Links["orders"].Href != base+"/orders/v1/orders?customer_id="+c.ID ||
		c.Links["notifications"].Href != base+"/notifications/v1/notifications?customer_id="+c.ID {
		t.Fatalf("links %+v", c.Links)
	}
	path := strings.TrimPrefix(loc, base+"/customers")

	rec = do(h, "PATCH", path, js, `{"name":"Ann Li","status":"suspended"}`, "If-Match", `"1"`)
	if rec.Code != 200 || rec.Header().Get("ETag") != `"2"` {
		t.Fatalf("patch: %d %s %s", rec.Code, rec.Header().Get("ETag"), rec.Body)
	}
	rec = do(h, "PATCH", path, js, `{}`, "If-Match", `"2"`)
	if rec.Code != 200 || rec.Header().Get("ETag") != `"2"` {
		t.Fatalf("empty patch changed the version: %d %s", rec.Code, rec.Header().Get("ETag"))
	}
	rec = do(h, "PATCH", path, js, `{"name":"Again"}`, "If-Match", `"1"`)
	if rec.Code != 412 {
		t.Fatalf("stale patch: %d", rec.Code)
	}
	rec = do(h, "DELETE", path, "", "")
	if rec.Code != 204 {
		t.Fatalf("delete: %d", rec.Code)
	}
	if rec = do(h, "GET", path, "", ""); rec.Code != 404 {
		t.Fatalf("get after delete: %d", rec.Code)
	}
}

func TestListPaginationAndFilters(t *testing.T) {
	h, store := newTestServer(t)
	for i := range 5 {
		id := fmt.Sprintf("aaaaaaaa-0000-4000-8000-%012d", i)
		st := customer.StatusActive
		if i%2 == 1 {
			st = customer.StatusSuspended
		}
		store.m[id] = customer.Customer{ID: id, Email: fmt.Sprintf("c%d@example.com", i), Name: "C", Status: st, Version: 1}
	}
	type doc struct {
		Links    map[string]struct{ Href string } `json:"_links"`
		Embedded struct {
			Customers []struct{ ID, Status string } `json:"customers"`
		} `json:"_embedded"`
		Page, Size, Total int
	}
	get := func(q string) doc {
		t.Helper()
		rec := do(h, "GET", "/v1/customers"+q, "", "")
		if rec.Code != 200 {
			t.Fatalf("GET %s: %d %s", q, rec.Code, rec.Body)
		}
		var d doc
		if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := get("?size=2&page=2")
	if d.Total != 6 || len(d.Embedded.Customers) != 2 || d.Page != 2 || d.Size != 2 {
		t.Fatalf("page 2: %+v", d)
	}
	coll := base + "/customers/v1/customers"
	for rel, want := range map[string]string{"self": "?page=2&size=2", "first": "?page=1&size=2", "prev": "?page=1&size=2", "next": "?page=3&size=2", "last": "?page=3&size=2"} {
		if d.Links[rel].Href != coll+want {
			t.Errorf("%s = %q, want %q", rel, d.Links[rel].Href, coll+want)
		}
	}
	d = get("?status=suspended")
	if d.Total != 2 || d.Links["self"].Href != coll+"?page=1&size=20&status=suspended" {
		t.Fatalf("status filter: %+v", d)
	}
	for _, c := range d.Embedded.Customers {
		if c.Status != "suspended" {
			t.Fatalf("filter leaked %+v", c)
		}
	}
	d = get("?email=C3@Example.com")
	if d.Total != 1 || d.Embedded.Customers[0].ID != "aaaaaaaa-0000-4000-8000-000000000003" {
		t.Fatalf("email filter: %+v", d)
	}
	d = get("?email=nobody@example.com")
	if d.Total != 0 || d.Embedded.Customers == nil {
		t.Fatalf("empty result: %+v", d)
	}
}

func TestRoot(t *testing.T) {
	h, _ := newTestServer(t)
	for _, p := range []string{"/v1", "/v1/"} {
		rec := do(h, "GET", p, "", "")
		var d struct {
			Links map[string]struct {
				Href      string
				Templated bool
			} `json:"_links"`
		}
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &d) != nil {
			t.Fatalf("GET %s: %d %s", p, rec.Code, rec.Body)
		}
		if d.Links["self"].Href != base+"/customers/v1" || d.Links["customers"].Href != base+"/customers/v1/customers" || !d.Links["find-customers"].Templated {
			t.Fatalf("root links %+v", d.Links)
		}
	}
}

// FuzzRequests sends arbitrary bodies, paths and queries through the whole
// handler: no input may produce a 5xx or a panic.
func FuzzRequests(f *testing.F) {
	f.Add("POST", "/v1/customers", `{"email":"a@b.co","name":"A"}`)
	f.Add("PATCH", "/v1/customers/"+seedID, `{"name":"x","status":"suspended"}`)
	f.Add("GET", "/v1/customers?page=2&size=1&email=x", ``)
	f.Add("DELETE", "/v1/customers/"+seedID, ``)
	h, _ := newTestServer(f)
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if method == "" || strings.ContainsAny(method, " \t\r\n()<>@,;:\\\"/[]?={}") || len(method) > 10 {
			method = "POST"
		}
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t#") {
			path = "/v1/customers"
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
		_, _ = io.Copy(io.Discard, rec.Body)
	})
}

// TestCustomersSeeOnlyTheirOwnRecord: a customer reads and changes their
// own record; another customer's answers exactly as a missing one (404).
func TestCustomersSeeOnlyTheirOwnRecord(t *testing.T) {
	h, _ := newTestServer(t)
	const other = "22222222-2222-4222-8222-222222222222"
	item := "/v1/customers/" + seedID
	if rec := do(h, "GET", item, "", "", authtest.CustomerHeader, seedID); rec.Code != 200 {
		t.Fatalf("own record: %d %s", rec.Code, rec.Body)
	}
	missing := do(h, "GET", "/v1/customers/33333333-3333-4333-8333-333333333333", "", "", authtest.CustomerHeader, other)
	for _, m := range []struct{ method, body string }{{"GET", ""}, {"PATCH", `{"name":"Mallory"}`}} {
		rec := do(h, m.method, item, js, m.body, authtest.CustomerHeader, other)
		if rec.Code != 404 || rec.Body.String() != strings.Replace(missing.Body.String(), "33333333-3333-4333-8333-333333333333", seedID, 1) {
			t.Errorf("%s another customer's record: %d %s (missing: %s)", m.method, rec.Code, rec.Body, missing.Body)
		}
	}
	if rec := do(h, "PATCH", item, js, `{"name":"Seed Two"}`, authtest.CustomerHeader, seedID); rec.Code != 200 {
		t.Errorf("own change: %d %s", rec.Code, rec.Body)
	}
}
