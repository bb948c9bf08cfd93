// Package eventapi is the event-driven side of crm.customers: it creates the
// customer record of a customer who signed up with the identity service, in
// the eventbus.HandleTx transaction of the event (inbox: handled once;
// customer_registered goes to the outbox in the same transaction).
//
// Consumed:
//
//	iam.accounts.account_registered -> for a customer account, the customer with the
//	                                   account's customer_id, email and name
//	                                   (customer_registered); staff and operator
//	                                   accounts are ignored
//
// The account and the customer are tied by choreography: the account names the
// customer id its tokens carry, and this service creates the customer under
// that id. The event carries no secret. A redelivered event finds the customer
// and changes nothing.
package eventapi

import (
	"context"
	"errors"
	"log/slog"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/services/customers/customer"
	"github.com/sagittarius-a/sagittarius/services/identity/accountevents"
)

// Store is what the handlers need from storage (implemented by mysql.Store).
type Store interface {
	// CreateIfAbsentTx inserts c and enqueues customer_registered in tx,
	// unless a customer with c.ID exists (then false, nil); an email used by
	// another customer is customer.ErrEmailTaken.
	CreateIfAbsentTx(ctx context.Context, tx *sqlx.Tx, c customer.Customer) (bool, error)
}

// Handlers handles the events crm.customers consumes.
type Handlers struct {
	store  Store
	logger *slog.Logger
}

// New returns the handlers on store. logger may be nil.
func New(store Store, logger *slog.Logger) *Handlers {
	if logger == nil {
		logger = slog.Default()
	}
	return &Handlers{store: store, logger: logger}
}

// Register subscribes every handler on bus, each in a transaction on db.
func (h *Handlers) Register(bus *eventbus.Bus, db *sqlx.DB) error {
	return eventbus.HandleTx(bus, db, accountevents.AccountRegistered, h.AccountRegistered)
}

// AccountRegistered creates the customer of a customer account. An account
// whose email another customer already has (registered by staff before the
// person signed up) cannot be given a second record: it is dead-lettered
// for an operator, as is an account without a valid email or name.
func (h *Handlers) AccountRegistered(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[accountevents.Account]) error {
	a := ev.Entity
	if a.Role != accountevents.RoleCustomer || a.CustomerID == "" {
		return nil
	}
	c, err := customer.Register(a.CustomerID, a.Email, a.Name, ev.FiredAt)
	if err != nil {
		return eventbus.Permanent(err)
	}
	created, err := h.store.CreateIfAbsentTx(ctx, tx, c)
	if errors.Is(err, customer.ErrEmailTaken) {
		return eventbus.Permanent(err)
	}
	if err != nil {
		return err
	}
	if created {
		h.logger.InfoContext(ctx, "customer registered for a new account", "customer_id", c.ID, "account_id", a.ID)
	}
	return nil
}
