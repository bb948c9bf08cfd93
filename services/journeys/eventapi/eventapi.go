// Package eventapi is the event-driven side of ops.journeys: it consumes
// every event on sagittarius-a, whatever its type (eventbus.HandleAll, a
// platform service's privilege), and records each in its journey, inside the
// handler's transaction guarded by the inbox (an event delivered twice is
// recorded once; the store also keeps each uuid once).
//
// Consumed: every event of the other services. Published (by the store, in
// the same transaction): ops.journeys.journey_stuck and journey_resumed when
// a journey's state crosses "stuck"; the store writes them into the journey's
// timeline itself (the bus does not hand a service its own events).
package eventapi

import (
	"context"
	"log/slog"

	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/services/catalog/productevents"
	"github.com/sagittarius-a/sagittarius/services/customers/customerevents"
	"github.com/sagittarius-a/sagittarius/services/identity/accountevents"
	"github.com/sagittarius-a/sagittarius/services/inventory/stockevents"
	"github.com/sagittarius-a/sagittarius/services/journeys/journey"
	"github.com/sagittarius-a/sagittarius/services/notifications/notificationevents"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
	"github.com/sagittarius-a/sagittarius/services/payments/paymentevents"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipmentevents"
)

// HeaderActor is the message header naming who caused an event (a user or
// client id), where the publisher records one.
const HeaderActor = "actor"

// Recorder is what the handler needs from storage (mysql.Store).
type Recorder interface {
	// Record adds the event to its journey in tx; a known uuid changes nothing.
	Record(ctx context.Context, tx *sqlx.Tx, r journey.Received) error
}

// Handlers handles the events ops.journeys consumes.
type Handlers struct {
	store  Recorder
	logger *slog.Logger
}

// New returns the handlers on store. logger may be nil.
func New(store Recorder, logger *slog.Logger) *Handlers {
	if logger == nil {
		logger = slog.Default()
	}
	return &Handlers{store: store, logger: logger}
}

// Register makes OnEvent the catch-all handler of bus, on db's inbox, with
// the platform's event types as its known types (their entities are
// validated; see eventbus.HandleAll).
func (h *Handlers) Register(bus *eventbus.Bus, db *sqlx.DB) error {
	return eventbus.HandleAll(bus, db, h.OnEvent, PlatformEvents()...)
}

// PlatformEvents lists the event types of every other service of
// scripts/services.conf. ops.journeys consumes every event whatever its type;
// these are the ones whose entities it validates, that its AsyncAPI manifest
// lists as consumed, and that its journey definitions may name (checked by its
// tests). Add a service's <name>events.All here when it joins the platform
// (the contract check refuses a consumed type no service publishes).
func PlatformEvents() []eventbus.EventInfoer {
	var out []eventbus.EventInfoer
	for _, all := range [][]eventbus.EventInfoer{customerevents.All, productevents.All, orderevents.All,
		stockevents.All, paymentevents.All, shipmentevents.All, notificationevents.All, accountevents.All} {
		out = append(out, all...)
	}
	return out
}

// OnEvent records ev in its journey. It has the signature of an
// eventbus.HandleAll handler so that tests can call it.
func (h *Handlers) OnEvent(ctx context.Context, tx *sqlx.Tx, ev eventbus.RawEvent) error {
	return h.store.Record(ctx, tx, journey.Received{
		Event: journey.Event{
			UUID: ev.UUID, Type: ev.Type, Publisher: ev.AppID, FiredAt: ev.FiredAt, CausationID: ev.CausationID,
			Actor: ev.Headers[HeaderActor], TraceID: journey.TraceID(ev.Traceparent), EntityKey: ev.EntityKey,
		},
		CorrelationID: ev.CorrelationID,
		Entity:        ev.Entity,
	})
}
