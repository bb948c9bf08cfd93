// Package notificationevents defines the integration events that crm.notifications
// publishes. It is the only package of the notifications service that other
// services may import.
//
// Each event carries the notification in the same shape as the REST model of
// /v1/notifications/{id}, HAL links included; links are absolute and point at the
// gateway (for example http://127.0.0.1:8080/notifications/v1/notifications/{id}).
//
// Events (entity key "notification"):
//
//	crm.notifications.notification_created  a new notification
//
// Consumers keep the highest Version they have seen per notification and ignore
// older events: events may arrive late, twice or out of order.
package notificationevents

import (
	"time"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/hal"
)

// Service is the publishing service: its queue name and the app_id of its messages.
const Service = "crm.notifications"

// Notification is the REST model of /v1/notifications/{id}.
//
// Links: self.
type Notification struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Version grows by one with every change; the HTTP ETag is derived from it.
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	Links     hal.Links `json:"_links" links:"self"`
}

// The events of crm.notifications.
var (
	NotificationCreated = eventbus.MustEventType[Notification](Service, "notification_created", "notification")
)

// All lists every event type of crm.notifications, for Bus.Publishes and contracts.
var All = []eventbus.EventInfoer{NotificationCreated}
