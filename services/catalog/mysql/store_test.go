package mysql_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/testinfra/servicetest"
	"github.com/sagittarius-a/sagittarius/services/catalog/httpapi"
	"github.com/sagittarius-a/sagittarius/services/catalog/mysql"
	"github.com/sagittarius-a/sagittarius/services/catalog/product"
	"github.com/sagittarius-a/sagittarius/services/catalog/productevents"
)

func newStore(t *testing.T) (*mysql.Store, *sqlx.DB, func() int) {
	t.Helper()
	db := servicetest.NewDatabase(t, 10, mysql.Migrations)
	var (
		mu sync.Mutex
		n  int
	)
	render := httpapi.NewRenderer(hal.MustBase("http://gw.test")).Product
	s, err := mysql.NewStore(db, render, func() { mu.Lock(); n++; mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	return s, db, func() int { mu.Lock(); defer mu.Unlock(); return n }
}

type outboxEvent struct {
	Type string `db:"type"`
	Body []byte `db:"body"`
}

func outbox(t *testing.T, db *sqlx.DB) []outboxEvent {
	t.Helper()
	var evs []outboxEvent
	if err := db.Select(&evs, `SELECT type, body FROM eventbus_outbox ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	return evs
}

func entity(t *testing.T, ev outboxEvent) productevents.Product {
	t.Helper()
	var payload struct {
		UUID    string                `json:"uuid"`
		Product productevents.Product `json:"product"`
	}
	if err := json.Unmarshal(ev.Body, &payload); err != nil || payload.UUID == "" {
		t.Fatalf("payload %s (%v)", ev.Body, err)
	}
	return payload.Product
}

func id(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

func mustAdd(t *testing.T, n int, sku string) product.Product {
	t.Helper()
	p, err := product.Add(id(n), sku, "Product "+sku, "A fine product", product.Money{Amount: int64(100 * n), Currency: "EUR"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func change(ch product.Change) func(*product.Product) (product.Outcome, error) {
	return func(p *product.Product) (product.Outcome, error) { return p.Apply(ch, time.Now()) }
}

func TestStoreLifecycleWritesEventsToTheOutbox(t *testing.T) {
	s, db, notified := newStore(t)
	ctx := context.Background()
	p := mustAdd(t, 1, "MUG-1")
	if err := s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, mustAdd(t, 2, "MUG-1")); !errors.Is(err, product.ErrSKUTaken) {
		t.Fatalf("duplicate SKU: %v", err)
	}
	got, err := s.Get(ctx, p.ID)
	if err != nil || got.SKU != "MUG-1" || got.Price != p.Price || got.Description != p.Description || got.Version != 1 {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if _, err := s.Get(ctx, id(9)); !errors.Is(err, product.ErrNotFound) {
		t.Fatalf("Get unknown: %v", err)
	}

	price := product.Money{Amount: 999, Currency: "EUR"}
	if up, err := s.Update(ctx, p.ID, change(product.Change{Price: &price})); err != nil || up.Price != price || up.Version != 2 {
		t.Fatalf("price change = %+v, %v", up, err)
	}
	if up, err := s.Update(ctx, p.ID, change(product.Change{Price: &price})); err != nil || up.Version != 2 {
		t.Fatalf("no-op change = %+v, %v", up, err)
	}
	retired := product.StatusRetired
	if up, err := s.Update(ctx, p.ID, change(product.Change{Status: &retired})); err != nil || up.Status != retired || up.Version != 3 {
		t.Fatalf("retire = %+v, %v", up, err)
	}
	name := "New name"
	if _, err := s.Update(ctx, p.ID, change(product.Change{Name: &name})); !errors.Is(err, product.ErrRetired) {
		t.Fatalf("change after retire: %v", err)
	}
	if _, err := s.Update(ctx, id(9), change(product.Change{Name: &name})); !errors.Is(err, product.ErrNotFound) {
		t.Fatalf("change unknown: %v", err)
	}

	evs := outbox(t, db)
	want := []string{"catalog.products.product_added", "catalog.products.product_updated", "catalog.products.product_retired"}
	if len(evs) != len(want) {
		t.Fatalf("%d events, want %d", len(evs), len(want))
	}
	for i := range want {
		if evs[i].Type != want[i] {
			t.Fatalf("event %d: %s, want %s", i, evs[i].Type, want[i])
		}
	}
	if e := entity(t, evs[1]); e.Price.Amount != 999 || e.Version != 2 || e.Links.Href("self") != "http://gw.test/catalog/v1/products/"+p.ID {
		t.Fatalf("product_updated entity %+v", e)
	}
	if e := entity(t, evs[2]); e.Status != "retired" || e.Version != 3 {
		t.Fatalf("product_retired entity %+v", e)
	}
	if notified() != 3 {
		t.Fatalf("relay notified %d times, want 3", notified())
	}
}

func TestStoreList(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	for i := 1; i <= 5; i++ {
		p := mustAdd(t, i, fmt.Sprintf("SKU-%d", i))
		p.AddedAt = time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC)
		if i%2 == 0 {
			p.Status = product.StatusRetired
		}
		if err := s.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		f         product.Filter
		wantIDs   []string
		wantTotal int
	}{
		{product.Filter{Limit: 2}, []string{id(1), id(2)}, 5},
		{product.Filter{Limit: 2, Offset: 4}, []string{id(5)}, 5},
		{product.Filter{Limit: 10, Status: product.StatusRetired}, []string{id(2), id(4)}, 2},
		{product.Filter{Limit: 10, Status: product.StatusActive, Offset: 1}, []string{id(3), id(5)}, 3},
		{product.Filter{Limit: 10, SKU: "SKU-3"}, []string{id(3)}, 1},
		{product.Filter{Limit: 10, SKU: "SKU-9"}, nil, 0},
	}
	for _, tt := range tests {
		got, total, err := s.List(ctx, tt.f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, p := range got {
			ids = append(ids, p.ID)
		}
		if total != tt.wantTotal || fmt.Sprint(ids) != fmt.Sprint(tt.wantIDs) {
			t.Errorf("List(%+v) = %v, %d; want %v, %d", tt.f, ids, total, tt.wantIDs, tt.wantTotal)
		}
	}
}

func TestConcurrentPriceChangesAreSerialised(t *testing.T) {
	s, db, _ := newStore(t)
	ctx := context.Background()
	p := mustAdd(t, 1, "RACE-1")
	if err := s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	const n = 10
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			price := product.Money{Amount: int64(1000 + i), Currency: "EUR"}
			_, err := s.Update(ctx, p.ID, change(product.Change{Price: &price}))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, _ := s.Get(ctx, p.ID)
	if got.Version != n+1 || len(outbox(t, db)) != n+1 {
		t.Fatalf("version %d, %d events after %d changes", got.Version, len(outbox(t, db)), n)
	}
}

// TestHTTPOverMariaDBNeverAnswers5xx sends edge-case input through the real
// handler and store: whatever the client sends, the database never turns it
// into a 5xx.
func TestHTTPOverMariaDBNeverAnswers5xx(t *testing.T) {
	s, _, _ := newStore(t)
	api := httpapi.New(s, httpapi.NewRenderer(hal.MustBase("http://gw.test")), nil)
	h := httpkit.Stack(api.Routes(), httpkit.Options{})
	name4 := strings.Repeat("😀", product.MaxNameLen)
	desc4 := strings.Repeat("😀", product.MaxDescriptionLen)
	tests := []struct {
		method, target, body string
		want                 int
	}{
		{"POST", "/v1/products", `{"sku":"` + strings.Repeat("A", 64) + `","name":"` + name4 + `","description":"` + desc4 + `","price":{"amount":10000000000,"currency":"EUR"}}`, 201},
		{"POST", "/v1/products", `{"sku":"é","name":"X","price":{"amount":1,"currency":"EUR"}}`, 422},
		{"POST", "/v1/products", `{"sku":"B","name":"X","price":{"amount":1,"currency":"€UR"}}`, 422},
		{"GET", "/v1/products?sku=" + strings.Repeat("A", 64), "", 200},
		{"GET", "/v1/products?sku=%ff", "", 400},
		{"GET", "/v1/products?page=1000000&size=100", "", 200},
		{"PATCH", "/v1/products/00000000-0000-4000-8000-000000000001", `{"description":"` + desc4 + `"}`, 404},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("%s %.60s %.60q: %d, want %d: %.300s", tt.method, tt.target, tt.body, rec.Code, tt.want, rec.Body)
		}
	}
}
