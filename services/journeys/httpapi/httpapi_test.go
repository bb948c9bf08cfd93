package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/services/journeys/httpapi"
	"github.com/sagittarius-a/sagittarius/services/journeys/journey"
)

// fakeStore records the last filter and knows one journey, "j1".
type fakeStore struct{ last journey.Filter }

func (f *fakeStore) Get(_ context.Context, id string) (journey.Journey, error) {
	if id != "j1" {
		return journey.Journey{}, journey.ErrNotFound
	}
	t0 := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	j := journey.Journey{ID: "j1", StartedAt: t0, UpdatedAt: t0, EventCount: 1, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		Links: map[string]string{"order": "orders/v1/orders/o1"}, Publishers: []string{"sales.orders", "ops.journeys"},
		Events: []journey.Event{{UUID: "e1", Type: "sales.orders.order_placed", Publisher: "sales.orders", FiredAt: t0}}}
	j.Kind, j.State = "order_placement", journey.StateInProgress
	j.Waiting = []journey.Wait{{Step: "reservation", Expect: []string{"a.b.c"}, Since: t0, Deadline: t0.Add(time.Second)}}
	j.Since = t0
	return j, nil
}

func (f *fakeStore) List(_ context.Context, fl journey.Filter) ([]journey.Journey, int, error) {
	f.last = fl
	return nil, 0, nil
}

func newAPI(t testing.TB, traceURL string) (*fakeStore, http.Handler) {
	t.Helper()
	c, err := journey.Default()
	if err != nil {
		t.Fatal(err)
	}
	store := &fakeStore{}
	return store, httpapi.New(store, httpapi.NewRenderer(hal.MustBase("http://gw.test"), c, traceURL), nil).Routes()
}

func TestListFilters(t *testing.T) {
	store, h := newAPI(t, "")
	const id = "0b1e3c2a-5b7d-4f00-9a6e-3f1c2d4e5f60"
	tests := []struct {
		query string
		code  int
		want  journey.Filter
	}{
		{"", 200, journey.Filter{Limit: 20}},
		{"state=stuck&page=2&size=10", 200, journey.Filter{State: "stuck", Limit: 10, Offset: 10}},
		{"state=awaiting_dispatch", 200, journey.Filter{State: "awaiting_dispatch", Limit: 20}},
		{"order_id=" + strings.ToUpper(id) + "&customer_id=" + id, 200, journey.Filter{OrderID: id, CustomerID: id, Limit: 20}},
		{"state=nope", 400, journey.Filter{}},
		{"state=", 400, journey.Filter{}},
		{"state=stuck&state=stuck", 400, journey.Filter{}},
		{"order_id=42", 400, journey.Filter{}},
		{"customer_id=" + id + "x", 400, journey.Filter{}},
		{"page=0", 400, journey.Filter{}},
		{"size=101", 400, journey.Filter{}},
	}
	for _, tt := range tests {
		store.last = journey.Filter{}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/journeys?"+tt.query, nil))
		if rec.Code != tt.code {
			t.Errorf("?%s: %d %s, want %d", tt.query, rec.Code, rec.Body, tt.code)
			continue
		}
		if tt.code != 200 {
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("?%s: Content-Type %q", tt.query, ct)
			}
			continue
		}
		if store.last != tt.want {
			t.Errorf("?%s: filter %+v, want %+v", tt.query, store.last, tt.want)
		}
	}
}

func TestGetJourney(t *testing.T) {
	_, h := newAPI(t, "https://traces.example/trace/{trace_id}")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/journeys/j1", nil))
	if rec.Code != 200 || rec.Header().Get("ETag") == "" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	var doc struct {
		State      string                     `json:"state"`
		WaitingFor []string                   `json:"waiting_for"`
		Links      map[string]json.RawMessage `json:"_links"`
		Embedded   struct {
			Events []struct {
				Type string `json:"type"`
			} `json:"events"`
		} `json:"_embedded"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.State != "in_progress" || len(doc.WaitingFor) != 1 || len(doc.Embedded.Events) != 1 {
		t.Errorf("%s", rec.Body)
	}
	for rel, want := range map[string]string{
		"self":            `"href":"http://gw.test/journeys/v1/journeys/j1"`,
		"order":           `"href":"http://gw.test/orders/v1/orders/o1"`,
		"trace":           `"href":"https://traces.example/trace/4bf92f3577b34da6a3ce929d0e0e4736"`,
		"failed-messages": `"href":"http://gw.test/orders/v1/failed-messages{?type,group,status,from,to}"`,
	} {
		if !strings.Contains(string(doc.Links[rel]), want) {
			t.Errorf("link %s: %s, want %s", rel, doc.Links[rel], want)
		}
	}
	if strings.Contains(string(doc.Links["failed-messages"]), "journeys/v1/failed-messages") {
		t.Errorf("failed-messages links a service the catalog does not list: %s", doc.Links["failed-messages"])
	}
	for _, id := range []string{"nope", strings.Repeat("x", 201)} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/journeys/"+id, nil))
		if rec.Code != 404 || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s", id[:4], rec.Code, rec.Header().Get("Content-Type"))
		}
	}
}

// No query string makes the list answer anything but 200 or a 400 problem.
func FuzzListQuery(f *testing.F) {
	for _, s := range []string{"state=stuck", "order_id=%00", "page=-1&size=x", "customer_id=\xff", "state=in_progress&state="} {
		f.Add(s)
	}
	_, h := newAPI(f, "")
	f.Fuzz(func(t *testing.T, q string) {
		req := httptest.NewRequest("GET", "/v1/journeys", nil)
		req.URL.RawQuery = q
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 && rec.Code != 400 {
			t.Fatalf("?%q: %d %s", q, rec.Code, rec.Body)
		}
	})
}
