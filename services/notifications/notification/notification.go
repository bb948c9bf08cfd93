// Package notification is the domain of crm.notifications: what a notification is, the rules
// a new one must follow and what its store must do. It knows nothing of HTTP,
// SQL or the bus.
package notification

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrNotFound: no notification with this id.
var ErrNotFound = errors.New("notification not found")

// MaxNameLen is the longest name, in characters.
const MaxNameLen = 200

// FieldError is one invalid field of a request (Field is a JSON member name).
type FieldError struct{ Field, Message string }

// ValidationError lists the invalid fields of a request.
type ValidationError struct{ Fields []FieldError }

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid notification: " + strings.Join(parts, "; ")
}

// Notification is one notification.
type Notification struct {
	ID        string
	Name      string // trimmed, 1 to MaxNameLen characters
	Version   int64  // 1 at creation, +1 with every change
	CreatedAt time.Time
}

// New returns a new notification with id, or a *ValidationError. name is trimmed.
func New(id, name string, now time.Time) (Notification, error) {
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n == 0 || n > MaxNameLen {
		return Notification{}, &ValidationError{Fields: []FieldError{{Field: "name", Message: "must be 1 to 200 characters"}}}
	}
	return Notification{ID: id, Name: name, Version: 1, CreatedAt: now.UTC().Truncate(time.Microsecond)}, nil
}

// Filter selects a page of notifications.
type Filter struct {
	Limit  int
	Offset int
}

// Store keeps notifications. Each method is one transaction; the events a change
// causes are written to the outbox in that same transaction.
type Store interface {
	// Create stores a new notification and enqueues notification_created.
	Create(ctx context.Context, w Notification) error
	// Get returns the notification or ErrNotFound.
	Get(ctx context.Context, id string) (Notification, error)
	// List returns the notifications of f, oldest first, and their total count.
	List(ctx context.Context, f Filter) ([]Notification, int, error)
}
