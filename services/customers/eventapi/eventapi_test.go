package eventapi_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/testinfra/servicetest"
	"github.com/sagittarius-a/sagittarius/services/customers/customer"
	"github.com/sagittarius-a/sagittarius/services/customers/eventapi"
	"github.com/sagittarius-a/sagittarius/services/customers/httpapi"
	"github.com/sagittarius-a/sagittarius/services/customers/mysql"
	"github.com/sagittarius-a/sagittarius/services/identity/accountevents"
)

// TestAccountRegisteredCreatesTheCustomerOnce: a customer account gets its
// customer record under its customer_id (customer_registered in the same
// transaction), a redelivery changes nothing, staff accounts are ignored,
// and an email another customer has is a permanent failure.
func TestAccountRegisteredCreatesTheCustomerOnce(t *testing.T) {
	db := servicetest.NewDatabase(t, 4, mysql.Migrations)
	store, err := mysql.NewStore(db, httpapi.NewRenderer(hal.MustBase("http://gw.test")).Customer, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := eventapi.New(store, nil)
	ctx := context.Background()
	handle := func(a accountevents.Account) error {
		tx, err := db.BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if err := h.AccountRegistered(ctx, tx, eventbus.Event[accountevents.Account]{UUID: "u", FiredAt: time.Now(), Entity: a}); err != nil {
			return err
		}
		return tx.Commit()
	}
	outbox := func() int {
		var n int
		if err := db.Get(&n, `SELECT COUNT(*) FROM eventbus_outbox`); err != nil {
			t.Fatal(err)
		}
		return n
	}
	ann := accountevents.Account{ID: "acct-1", Email: "Ann@Example.com", Name: "Ann", Role: "customer", CustomerID: "cust-1", Status: "active"}
	for range 2 {
		if err := handle(ann); err != nil {
			t.Fatal(err)
		}
	}
	c, err := store.Get(ctx, "cust-1")
	if err != nil || c.Email != "ann@example.com" || c.Name != "Ann" {
		t.Fatalf("customer %+v %v", c, err)
	}
	if n := outbox(); n != 1 {
		t.Fatalf("%d events in the outbox, want one customer_registered", n)
	}
	if err := handle(accountevents.Account{ID: "acct-2", Email: "staff@example.com", Name: "S", Role: "staff", Status: "active"}); err != nil {
		t.Fatal(err)
	}
	err = handle(accountevents.Account{ID: "acct-3", Email: "ann@example.com", Name: "Ann 2", Role: "customer", CustomerID: "cust-3", Status: "active"})
	var perm *eventbus.PermanentError
	if !errors.As(err, &perm) || !errors.Is(err, customer.ErrEmailTaken) {
		t.Fatalf("email taken: %v", err)
	}
	if n := outbox(); n != 1 {
		t.Fatalf("%d events in the outbox after a staff account and a refused one", n)
	}
}
