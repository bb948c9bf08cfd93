// Package eventapi is the event-driven side of crm.notifications: each event
// it consumes is handled once, inside the eventbus.HandleTx transaction
// (inbox). Nothing is sent here: a notification is recorded in the
// transaction, and the delivery actor (package delivery) sends it after the
// commit.
//
// Consumed:
//
//	crm.customers.customer_registered -> the read model of customers (newest version wins);
//	crm.customers.customer_updated       waiting notifications get the e-mail address,
//	crm.customers.customer_removed       or not_sent once the customer is removed
//	sales.orders.order_confirmed      -> notification order_confirmed
//	sales.orders.order_cancelled      -> notification order_cancelled (with the reason in words)
//	sales.orders.order_shipped        -> notification order_shipped
//	sales.orders.order_delivered      -> notification order_delivered
//	finance.payments.payment_refunded -> notification payment_refunded (its customer from the order's events)
//
// One notification per order and kind, never two, also without the inbox (a
// republished event with a new uuid). Tolerant of order: a notification whose
// customer or address is unknown yet waits (pending) until customer_registered
// or an event of its order arrives.
package eventapi

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/services/customers/customerevents"
	"github.com/sagittarius-a/sagittarius/services/notifications/notification"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
	"github.com/sagittarius-a/sagittarius/services/payments/paymentevents"
)

// Store is what the handlers need from storage (implemented by mysql.Store).
// Each method runs in the caller's transaction tx.
type Store interface {
	RecordCustomer(ctx context.Context, tx *sqlx.Tx, c notification.Customer) (bool, error)
	RecordOrder(ctx context.Context, tx *sqlx.Tx, orderID, customerID string) error
	Record(ctx context.Context, tx *sqlx.Tx, n notification.Notification) (bool, error)
}

// Handlers handles the events the service consumes. Its methods have the
// signature of eventbus.HandleTx handlers so that tests can call them directly.
type Handlers struct {
	store  Store
	logger *slog.Logger
	now    func() time.Time
}

// New returns the handlers on store. logger may be nil.
func New(store Store, logger *slog.Logger) *Handlers {
	if logger == nil {
		logger = slog.Default()
	}
	return &Handlers{store: store, logger: logger, now: time.Now}
}

// Register subscribes every handler on bus, each in a transaction on db.
func (h *Handlers) Register(bus *eventbus.Bus, db *sqlx.DB) error {
	return errors.Join(
		eventbus.HandleTx(bus, db, customerevents.CustomerRegistered, h.Customer),
		eventbus.HandleTx(bus, db, customerevents.CustomerUpdated, h.Customer),
		eventbus.HandleTx(bus, db, customerevents.CustomerRemoved, h.Customer),
		eventbus.HandleTx(bus, db, orderevents.OrderConfirmed, h.Order(notification.OrderConfirmed)),
		eventbus.HandleTx(bus, db, orderevents.OrderCancelled, h.Order(notification.OrderCancelled)),
		eventbus.HandleTx(bus, db, orderevents.OrderShipped, h.Order(notification.OrderShipped)),
		eventbus.HandleTx(bus, db, orderevents.OrderDelivered, h.Order(notification.OrderDelivered)),
		eventbus.HandleTx(bus, db, paymentevents.PaymentRefunded, h.PaymentRefunded),
	)
}

// Customer records the customer of any customer event in the read model.
func (h *Handlers) Customer(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[customerevents.Customer]) error {
	c := ev.Entity
	if c.ID == "" {
		return eventbus.Permanent(errors.New(ev.Type + " " + ev.UUID + " without a customer id"))
	}
	_, err := h.store.RecordCustomer(ctx, tx, notification.Customer{ID: c.ID, Email: c.Email, Name: c.Name, Version: c.Version,
		Removed: c.Status == customerevents.StatusRemoved})
	return err
}

// Order returns the handler of an order event: the notification of kind.
func (h *Handlers) Order(kind notification.Kind) func(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[orderevents.Order]) error {
	return func(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[orderevents.Order]) error {
		o := ev.Entity
		if o.ID == "" {
			return eventbus.Permanent(errors.New(ev.Type + " " + ev.UUID + " without an order id"))
		}
		if err := h.store.RecordOrder(ctx, tx, o.ID, o.CustomerID); err != nil {
			return err
		}
		return h.record(ctx, tx, ev.UUID, kind, notification.Facts{OrderID: o.ID, CustomerID: o.CustomerID,
			Total: notification.Money{Amount: o.Total.Amount, Currency: o.Total.Currency}, CancellationReason: o.CancellationReason})
	}
}

// PaymentRefunded records the refund's notification; its customer is the order's.
func (h *Handlers) PaymentRefunded(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[paymentevents.Payment]) error {
	p := ev.Entity
	if p.OrderID == "" {
		return eventbus.Permanent(errors.New(ev.Type + " " + ev.UUID + " without an order id"))
	}
	return h.record(ctx, tx, ev.UUID, notification.PaymentRefunded, notification.Facts{OrderID: p.OrderID,
		Total: notification.Money{Amount: p.Amount.Amount, Currency: p.Amount.Currency}})
}

func (h *Handlers) record(ctx context.Context, tx *sqlx.Tx, eventID string, kind notification.Kind, f notification.Facts) error {
	subject, text, err := notification.Compose(kind, f)
	if err != nil {
		return eventbus.Permanent(err)
	}
	stored, err := h.store.Record(ctx, tx, notification.Notification{ID: uuid.NewString(), Kind: kind, OrderID: f.OrderID,
		CustomerID: f.CustomerID, Subject: subject, Text: text, EventID: eventID, CreatedAt: h.now()})
	if err != nil {
		return err
	}
	if stored {
		h.logger.InfoContext(ctx, "notification recorded", "order_id", f.OrderID, "kind", kind)
	}
	return nil
}
