// Package notificationevents defines the integration events that
// crm.notifications publishes. It is the only package of the notifications
// service that other services may import.
//
// Each event carries the notification in the same shape as the REST model of
// /v1/notifications/{id}, HAL links included; links are absolute and point at
// the gateway (for example http://127.0.0.1:8080/notifications/v1/notifications/{id}).
//
// Events (entity key "notification"):
//
//	crm.notifications.notification_sent  the SMTP server accepted the notification, status "sent"
//
// Consumers keep the highest Version they have seen per notification and
// ignore older events: events may arrive late, twice or out of order.
package notificationevents

import (
	"time"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/hal"
)

// Service is the publishing service: its queue name and the app_id of its messages.
const Service = "crm.notifications"

// Notification statuses (see the notification package of the service).
const (
	StatusPending = "pending"  // recorded; sent once its recipient is known
	StatusSending = "sending"  // an SMTP conversation is under way
	StatusSent    = "sent"     // the SMTP server accepted it
	StatusNotSent = "not_sent" // not sent; reason says why
	StatusFailed  = "failed"   // the server refused it or was unreachable; retried at next_attempt_at unless null
)

// Notification is the message a shop sends a customer at one step of an
// order's life: the REST model of /v1/notifications/{id}.
//
// Links: self, order (the order in the orders service), customer (the
// customer in the customers service, once known).
type Notification struct {
	ID string `json:"id"`
	// Kind is the event it comes from: order_confirmed, order_cancelled,
	// order_shipped, order_delivered or payment_refunded. One per order and kind.
	Kind    string `json:"kind" enum:"order_confirmed,order_cancelled,order_shipped,order_delivered,payment_refunded"`
	OrderID string `json:"order_id"`
	// CustomerID is empty until known (a refund may arrive before any event of its order).
	CustomerID string `json:"customer_id,omitempty"`
	Channel    string `json:"channel" enum:"email"`
	// Recipient is the customer's e-mail address, from the service's read
	// model of customers; empty until known.
	Recipient string `json:"recipient,omitempty"`
	Subject   string `json:"subject"`
	Text      string `json:"text"`
	Status    string `json:"status" enum:"pending,sending,sent,not_sent,failed"`
	// Reason says why a notification is pending, not sent or failed.
	Reason   string `json:"reason,omitempty"`
	Attempts int    `json:"attempts"`
	// NextAttemptAt is when a failed notification is tried again.
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	// EventID is the uuid of the event the notification comes from.
	EventID string `json:"event_id"`
	// Version grows by one with every change; the HTTP ETag is derived from it.
	Version   int64      `json:"version"`
	CreatedAt time.Time  `json:"created_at"`
	SentAt    *time.Time `json:"sent_at,omitempty"`
	Links     hal.Links  `json:"_links" links:"self,order,customer?"`
}

// The events of crm.notifications.
var (
	NotificationSent = eventbus.MustEventType[Notification](Service, "notification_sent", "notification")
)

// All lists every event type of crm.notifications, for Bus.Publishes and contracts.
var All = []eventbus.EventInfoer{NotificationSent}
