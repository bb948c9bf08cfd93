// Package journeyevents defines the integration events that ops.journeys
// publishes, and its REST model. It is the only package of the journeys
// service that other services may import.
//
// Events (entity key "journey", the REST model of /v1/journeys/{id} without
// its timeline):
//
//	ops.journeys.journey_stuck    a step of the journey overran its limit: state "stuck", stuck_step set
//	ops.journeys.journey_resumed  a stuck journey's missing event arrived: state no longer "stuck"
//
// Each carries the journey's correlation id (so it appears in the journey's
// own timeline) and continues its trace.
package journeyevents

import (
	"time"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/hal"
)

// Service is the publishing service: its queue name and the app_id of its messages.
const Service = "ops.journeys"

// Journey is the journey of one business transaction: every event carrying
// one correlation id. The REST model of /v1/journeys/{id}.
//
// Links: self, collection; order, customer, reservation, payment, shipment
// (the resources its events touched, through the gateway); failed-messages
// (templated, one per service involved); trace (the trace UI, when
// TRACE_UI_URL is set).
type Journey struct {
	// ID is the correlation id its events carry.
	ID string `json:"id"`
	// Kind is the definition it follows (order_placement, order_cancellation,
	// shipment_dispatch, shipment_delivery); "" when untracked.
	Kind string `json:"kind"`
	// State is in_progress, stuck, completed, untracked, or a settled state
	// its definition declares (awaiting_dispatch, awaiting_delivery).
	State string `json:"state"`
	// WaitingFor are the event types that would close an open step.
	WaitingFor []string `json:"waiting_for"`
	// Since is when the earliest open step opened (absent without one).
	Since *time.Time `json:"since,omitempty"`
	// StuckStep is the first step that overran its limit (only when stuck).
	StuckStep string `json:"stuck_step,omitempty"`
	// Waiting details the open steps.
	Waiting []Wait `json:"waiting"`
	// StartedAt and UpdatedAt are the fired_at of its first and last events.
	StartedAt  time.Time `json:"started_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	EventCount int       `json:"event_count"`
	// TraceID is the W3C trace id of its first traced event.
	TraceID string `json:"trace_id,omitempty"`
	// IDs are the business ids its events carry, by kind (order_id,
	// customer_id, payment_id, shipment_id).
	IDs map[string][]string `json:"ids"`
	// Version grows with every change of the journey.
	Version  int64            `json:"version"`
	Links    hal.Links        `json:"_links" links:"self,collection,order?,customer?,reservation?,payment?,shipment?,failed-messages?,trace?"`
	Embedded *JourneyEmbedded `json:"_embedded,omitempty"`
}

// Wait is an open step of a journey.
type Wait struct {
	Step     string    `json:"step"`
	Expect   []string  `json:"expect"`
	Since    time.Time `json:"since"`
	Deadline time.Time `json:"deadline"`
	Overdue  bool      `json:"overdue"`
}

// JourneyEmbedded holds a journey's timeline (GET /v1/journeys/{id} only).
type JourneyEmbedded struct {
	Events []Event `json:"events"`
}

// Event is one event of a journey's timeline.
type Event struct {
	UUID      string    `json:"uuid"`
	Type      string    `json:"type"`
	Publisher string    `json:"publisher"`
	FiredAt   time.Time `json:"fired_at"`
	// CausationID is the uuid of the event that caused it ("" for the first
	// event of a flow).
	CausationID string `json:"causation_id,omitempty"`
	// Actor is who caused it, where the event records one.
	Actor   string `json:"actor,omitempty"`
	TraceID string `json:"trace_id,omitempty"`
}

// The events of ops.journeys.
var (
	JourneyStuck   = eventbus.MustEventType[Journey](Service, "journey_stuck", "journey")
	JourneyResumed = eventbus.MustEventType[Journey](Service, "journey_resumed", "journey")
)

// All lists every event type of ops.journeys, for Bus.Publishes and contracts.
var All = []eventbus.EventInfoer{JourneyStuck, JourneyResumed}
