package mysql_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/internal/auth/authtest"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/testinfra/servicetest"
	"github.com/sagittarius-a/sagittarius/services/customers/customer"
	"github.com/sagittarius-a/sagittarius/services/customers/customerevents"
	"github.com/sagittarius-a/sagittarius/services/customers/httpapi"
	"github.com/sagittarius-a/sagittarius/services/customers/mysql"
)

// newStore returns a Store on a fresh, migrated database.
func newStore(t *testing.T) (*mysql.Store, *sqlx.DB, *int) {
	t.Helper()
	db := servicetest.NewDatabase(t, 10, mysql.Migrations)
	var mu sync.Mutex
	notified := new(int)
	render := httpapi.NewRenderer(hal.MustBase("http://gw.test")).Customer
	s, err := mysql.NewStore(db, render, func() { mu.Lock(); *notified++; mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	return s, db, notified
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

func entity(t *testing.T, ev outboxEvent) customerevents.Customer {
	t.Helper()
	var payload struct {
		UUID     string                  `json:"uuid"`
		FiredAt  string                  `json:"fired_at"`
		Customer customerevents.Customer `json:"customer"`
	}
	if err := json.Unmarshal(ev.Body, &payload); err != nil {
		t.Fatal(err)
	}
	if payload.UUID == "" || payload.FiredAt == "" {
		t.Fatalf("payload without uuid/fired_at: %s", ev.Body)
	}
	return payload.Customer
}

func mustRegister(t *testing.T, id, email string) customer.Customer {
	t.Helper()
	c, err := customer.Register(id, email, "Name "+id[:4], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func id(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

func TestStoreLifecycleWritesEventsToTheOutbox(t *testing.T) {
	s, db, notified := newStore(t)
	ctx := context.Background()

	c := mustRegister(t, id(1), "ann@example.com")
	if err := s.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Email != c.Email || got.Version != 1 || got.Status != customer.StatusActive || !got.RegisteredAt.Equal(c.RegisteredAt.Truncate(time.Microsecond)) {
		t.Fatalf("Get = %+v, want %+v", got, c)
	}

	// Duplicate email: refused, nothing enqueued.
	if err := s.Create(ctx, mustRegister(t, id(2), "ann@example.com")); !errors.Is(err, customer.ErrEmailTaken) {
		t.Fatalf("duplicate email: %v", err)
	}

	// Update that changes something: version 2, customer_updated.
	name := "Ann Lee"
	up, err := s.Update(ctx, c.ID, func(c *customer.Customer) (bool, error) {
		return c.Apply(customer.Change{Name: &name}, time.Now())
	})
	if err != nil || up.Version != 2 || up.Name != name {
		t.Fatalf("Update = %+v, %v", up, err)
	}
	// Update that changes nothing: no event, same version.
	same, err := s.Update(ctx, c.ID, func(c *customer.Customer) (bool, error) {
		return c.Apply(customer.Change{Name: &name}, time.Now())
	})
	if err != nil || same.Version != 2 {
		t.Fatalf("no-op Update = %+v, %v", same, err)
	}
	// Update refused by the callback: nothing stored.
	if _, err := s.Update(ctx, c.ID, func(*customer.Customer) (bool, error) { return false, customer.ErrStale }); !errors.Is(err, customer.ErrStale) {
		t.Fatalf("aborted Update: %v", err)
	}
	// Update to another customer's email: 409.
	if err := s.Create(ctx, mustRegister(t, id(3), "bob@example.com")); err != nil {
		t.Fatal(err)
	}
	bob := "bob@example.com"
	if _, err := s.Update(ctx, c.ID, func(c *customer.Customer) (bool, error) {
		return c.Apply(customer.Change{Email: &bob}, time.Now())
	}); !errors.Is(err, customer.ErrEmailTaken) {
		t.Fatalf("Update to a taken email: %v", err)
	}
	if _, err := s.Update(ctx, id(99), func(*customer.Customer) (bool, error) { return true, nil }); !errors.Is(err, customer.ErrNotFound) {
		t.Fatalf("Update unknown: %v", err)
	}

	// Remove refused, then done.
	if _, err := s.Remove(ctx, c.ID, func(customer.Customer) error { return customer.ErrStale }); !errors.Is(err, customer.ErrStale) {
		t.Fatalf("aborted Remove: %v", err)
	}
	if _, err := s.Remove(ctx, c.ID, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, c.ID); !errors.Is(err, customer.ErrNotFound) {
		t.Fatalf("Get after Remove: %v", err)
	}
	if _, err := s.Remove(ctx, c.ID, nil); !errors.Is(err, customer.ErrNotFound) {
		t.Fatalf("second Remove: %v", err)
	}
	// The email is free again.
	if err := s.Create(ctx, mustRegister(t, id(4), "ann@example.com")); err != nil {
		t.Fatalf("re-register a removed email: %v", err)
	}

	evs := outbox(t, db)
	wantTypes := []string{"crm.customers.customer_registered", "crm.customers.customer_updated",
		"crm.customers.customer_registered", "crm.customers.customer_removed", "crm.customers.customer_registered"}
	if len(evs) != len(wantTypes) {
		t.Fatalf("outbox has %d events, want %d", len(evs), len(wantTypes))
	}
	for i, ev := range evs {
		if ev.Type != wantTypes[i] {
			t.Fatalf("event %d type %s, want %s", i, ev.Type, wantTypes[i])
		}
	}
	updated, removed := entity(t, evs[1]), entity(t, evs[3])
	if updated.Version != 2 || updated.Name != name || updated.Links.Href("self") != "http://gw.test/customers/v1/customers/"+c.ID {
		t.Fatalf("customer_updated entity %+v", updated)
	}
	if removed.Status != customerevents.StatusRemoved || removed.Version != 3 {
		t.Fatalf("customer_removed entity %+v", removed)
	}
	if *notified != len(wantTypes) {
		t.Fatalf("relay notified %d times, want %d", *notified, len(wantTypes))
	}
}

func TestStoreList(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	for i := 1; i <= 7; i++ {
		c := mustRegister(t, id(i), fmt.Sprintf("c%d@example.com", i))
		c.RegisteredAt = time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC)
		if i%3 == 0 {
			c.Status = customer.StatusSuspended
		}
		if err := s.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		f         customer.Filter
		wantIDs   []string
		wantTotal int
	}{
		{customer.Filter{Limit: 3}, []string{id(1), id(2), id(3)}, 7},
		{customer.Filter{Limit: 3, Offset: 6}, []string{id(7)}, 7},
		{customer.Filter{Limit: 3, Offset: 9}, nil, 7},
		{customer.Filter{Limit: 10, Status: customer.StatusSuspended}, []string{id(3), id(6)}, 2},
		{customer.Filter{Limit: 10, Email: "c5@example.com"}, []string{id(5)}, 1},
		{customer.Filter{Limit: 10, Email: "c5@example.com", Status: customer.StatusSuspended}, nil, 0},
	}
	for _, tt := range tests {
		got, total, err := s.List(ctx, tt.f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range got {
			ids = append(ids, c.ID)
		}
		if total != tt.wantTotal || fmt.Sprint(ids) != fmt.Sprint(tt.wantIDs) {
			t.Errorf("List(%+v) = %v, %d; want %v, %d", tt.f, ids, total, tt.wantIDs, tt.wantTotal)
		}
	}
}

func TestConcurrentUpdatesNeverLoseAVersion(t *testing.T) {
	s, db, _ := newStore(t)
	ctx := context.Background()
	c := mustRegister(t, id(1), "race@example.com")
	if err := s.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	const n = 10
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			name := fmt.Sprintf("name %d", i)
			_, err := s.Update(ctx, c.ID, func(c *customer.Customer) (bool, error) {
				return c.Apply(customer.Change{Name: &name}, time.Now())
			})
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
	got, err := s.Get(ctx, c.ID)
	if err != nil || got.Version != n+1 {
		t.Fatalf("version %d after %d updates (%v)", got.Version, n, err)
	}
	if evs := outbox(t, db); len(evs) != n+1 {
		t.Fatalf("%d events, want %d", len(evs), n+1)
	}
}

// TestHTTPOverMariaDBNeverAnswers5xx sends edge-case input through the real
// handler and store: whatever the client sends, the database never turns it
// into a 5xx.
func TestHTTPOverMariaDBNeverAnswers5xx(t *testing.T) {
	s, _, _ := newStore(t)
	api := httpapi.New(s, httpapi.NewRenderer(hal.MustBase("http://gw.test")), nil)
	h := httpkit.Stack(authtest.Caller(api.Routes()), httpkit.Options{})
	long4 := strings.Repeat("😀", customer.MaxNameLen)
	tests := []struct{ method, target, body string }{
		{"POST", "/v1/customers", `{"email":"jöhn@exämple.com","name":"` + long4 + `"}`},
		{"POST", "/v1/customers", `{"email":"` + strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + `.com","name":"Long"}`},
		{"POST", "/v1/customers", `{"email":"x@y.co","name":"\u0000"}`},
		{"POST", "/v1/customers", `{"email":"\ud800@y.co","name":"Surrogate"}`},
		{"GET", "/v1/customers?email=" + url.QueryEscape("jöhn@exämple.com"), ""},
		{"GET", "/v1/customers?email=%ff%fe", ""},
		{"GET", "/v1/customers?email=" + strings.Repeat("%F0%9F%98%80", 60), ""},
		{"GET", "/v1/customers?page=1000000&size=100", ""},
		{"PATCH", "/v1/customers/00000000-0000-4000-8000-000000000001", `{"name":"` + long4 + `"}`},
		{"DELETE", "/v1/customers/00000000-0000-4000-8000-000000000001", ""},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Errorf("%s %s %.60q: %d %s", tt.method, tt.target, tt.body, rec.Code, rec.Body)
		}
		t.Logf("%s %.50s: %d", tt.method, tt.target, rec.Code)
	}
}
