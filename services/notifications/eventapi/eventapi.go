// Package eventapi is the event-driven side of crm.notifications: each event it
// consumes is handled once, inside the eventbus.HandleTx transaction (inbox:
// a redelivered event is skipped; follow-up events go to the outbox in the
// same transaction).
//
// Consumed:
//
//	crm.customers.customer_registered -> the customer in the read model (newest version wins)
//
// An example of the most common reaction of a service to another's events:
// a read model. Replace it with the events the service reacts to; import only
// the other services' <name>events packages.
package eventapi

import (
	"context"
	"log/slog"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/services/customers/customerevents"
)

// Store is what the handlers need from storage (implemented by mysql.Store).
// Each method runs in the caller's transaction tx.
type Store interface {
	RecordCustomer(ctx context.Context, tx *sqlx.Tx, id, name string, version int64) (bool, error)
}

// Handlers handles the events the service consumes. Its methods have the
// signature of eventbus.HandleTx handlers so that tests can call them directly.
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
	return eventbus.HandleTx(bus, db, customerevents.CustomerRegistered, h.CustomerRegistered)
}

// CustomerRegistered records the customer in the read model. Idempotent
// also without the inbox: an older or equal version changes nothing.
func (h *Handlers) CustomerRegistered(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[customerevents.Customer]) error {
	if ev.Entity.ID == "" {
		return eventbus.Permanent(errInvalid("customer_registered " + ev.UUID + " without a customer id"))
	}
	changed, err := h.store.RecordCustomer(ctx, tx, ev.Entity.ID, ev.Entity.Name, ev.Entity.Version)
	if err != nil {
		return err
	}
	if changed {
		h.logger.InfoContext(ctx, "customer recorded", "customer_id", ev.Entity.ID, "version", ev.Entity.Version)
	}
	return nil
}

type errInvalid string

func (e errInvalid) Error() string { return string(e) }
