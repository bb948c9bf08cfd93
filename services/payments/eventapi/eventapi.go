// Package eventapi is the event-driven side of finance.payments: it keeps a read model of orders
// and charges or refunds them, each event inside its eventbus.HandleTx transaction (inbox: handled
// once; follow-up events go to the outbox in the same transaction).
//
// Consumed:
//
//	sales.orders.order_placed          -> amount of the order and the token of its payment method (payment_method_id,
//	                                      registered here); charge if its stock is already reserved
//	logistics.inventory.stock_reserved -> charge the order: payment_captured | payment_declined
//	sales.orders.order_cancelled       -> never charge it; refund a captured payment once: payment_refunded
//
// order_placed and stock_reserved may arrive in either order: the order is charged when both have
// been seen, unless order_cancelled came first. Each handler is idempotent also without the inbox.
//
// The provider is called inside the transaction. That is sound here because the provider is
// idempotent per order (see payment.Provider): a transaction that rolls back after a capture and is
// retried gets the same capture back, never a second one.
package eventapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/services/inventory/stockevents"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
	"github.com/sagittarius-a/sagittarius/services/payments/payment"
)

// Store is what the handlers need from storage (implemented by mysql.Store). Each method runs in the
// caller's transaction; the Record methods lock the order until it ends.
type Store interface {
	RecordOrderPlaced(ctx context.Context, tx *sqlx.Tx, o payment.Order) (payment.Order, *payment.Payment, error)
	MethodTx(ctx context.Context, tx *sqlx.Tx, id string) (*payment.Method, error)
	RecordStockReserved(ctx context.Context, tx *sqlx.Tx, orderID string) (payment.Order, *payment.Payment, error)
	RecordOrderCancelled(ctx context.Context, tx *sqlx.Tx, orderID string) (payment.Order, *payment.Payment, error)
	AddPayment(ctx context.Context, tx *sqlx.Tx, p payment.Payment) error
	SaveRefund(ctx context.Context, tx *sqlx.Tx, p payment.Payment) error
	Now() time.Time
}

// Handlers handles the events payments consumes. Its methods have the signature of eventbus.HandleTx
// handlers so that tests can call them directly.
type Handlers struct {
	store    Store
	provider payment.Provider
	logger   *slog.Logger
}

// New returns the handlers on store, charging through provider.
func New(store Store, provider payment.Provider, logger *slog.Logger) *Handlers {
	if logger == nil {
		logger = slog.Default()
	}
	return &Handlers{store: store, provider: provider, logger: logger}
}

// Register subscribes every handler on bus, each in a transaction on db.
func (h *Handlers) Register(bus *eventbus.Bus, db *sqlx.DB) error {
	return errors.Join(
		eventbus.HandleTx(bus, db, orderevents.OrderPlaced, h.OrderPlaced),
		eventbus.HandleTx(bus, db, stockevents.StockReserved, h.StockReserved),
		eventbus.HandleTx(bus, db, orderevents.OrderCancelled, h.OrderCancelled),
	)
}

func permanentIfInvalid(err error) error {
	if errors.Is(err, payment.ErrInvalid) {
		return eventbus.Permanent(err)
	}
	return err
}

// OrderPlaced records the order's amount and token, and charges it when its stock is reserved.
func (h *Handlers) OrderPlaced(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[orderevents.Order]) error {
	o := ev.Entity
	// The order names a payment method registered here; its token never
	// travels in an event. A method unknown or of another customer leaves
	// no token: the charge is declined (invalid_payment_token).
	method, err := h.store.MethodTx(ctx, tx, o.PaymentMethodID)
	if err != nil {
		return err
	}
	order, existing, err := h.store.RecordOrderPlaced(ctx, tx, payment.Order{
		ID: o.ID, CustomerID: o.CustomerID, Total: payment.Money{Amount: o.Total.Amount, Currency: o.Total.Currency},
		PaymentToken: payment.TokenFor(method, o.CustomerID),
	})
	if err != nil {
		return permanentIfInvalid(err)
	}
	return h.chargeIfDue(ctx, tx, order, existing)
}

// StockReserved charges the order when it has been placed and not cancelled.
func (h *Handlers) StockReserved(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[stockevents.Reservation]) error {
	order, existing, err := h.store.RecordStockReserved(ctx, tx, ev.Entity.OrderID)
	if err != nil {
		return permanentIfInvalid(err)
	}
	return h.chargeIfDue(ctx, tx, order, existing)
}

// OrderCancelled records the cancellation (a later stock_reserved is not charged) and refunds a
// captured payment.
func (h *Handlers) OrderCancelled(ctx context.Context, tx *sqlx.Tx, ev eventbus.Event[orderevents.Order]) error {
	_, existing, err := h.store.RecordOrderCancelled(ctx, tx, ev.Entity.ID)
	if err != nil {
		return permanentIfInvalid(err)
	}
	if !payment.RefundDue(existing) {
		return nil
	}
	refunded, err := payment.Refund(ctx, h.provider, *existing, h.store.Now())
	if err != nil {
		return err
	}
	if err := h.store.SaveRefund(ctx, tx, refunded); err != nil {
		return err
	}
	h.logger.InfoContext(ctx, "payment refunded", "order_id", refunded.OrderID, "payment_id", refunded.ID)
	return nil
}

func (h *Handlers) chargeIfDue(ctx context.Context, tx *sqlx.Tx, o payment.Order, existing *payment.Payment) error {
	if !payment.ChargeDue(o, existing) {
		return nil
	}
	p, err := payment.Charge(ctx, h.provider, o, uuid.NewString(), h.store.Now())
	if err != nil {
		return err
	}
	if err := h.store.AddPayment(ctx, tx, p); err != nil {
		return fmt.Errorf("order %s: %w", o.ID, err)
	}
	h.logger.InfoContext(ctx, "payment", "order_id", p.OrderID, "payment_id", p.ID, "status", p.Status, "reason", p.Reason)
	return nil
}
