// Package notification is the domain of crm.notifications: which message a
// shop sends a customer at each step of an order's life, its statuses, and
// what its store must do. It knows nothing of HTTP, SQL, SMTP or the bus.
//
// A notification is recorded once per (order, kind), from the event of that
// step; it is sent after the transaction that recorded it, at most once:
//
//	pending   recorded; sent as soon as its recipient is known (Reason says
//	          "waiting for the customer's e-mail address" until then)
//	sending   claimed by a sender; an SMTP conversation is under way
//	sent      the SMTP server accepted it (SentAt)
//	not_sent  not sent, Reason says why ("no SMTP server configured": sent
//	          once a server is configured; "the customer was removed": never)
//	failed    the server refused it or could not be reached (Reason); retried
//	          at NextAttemptAt, unless the failure came after the server had
//	          the whole message (NextAttemptAt nil: it may have been delivered,
//	          and sending it again could send it twice)
package notification

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind is the step of an order's life a notification tells about: the name
// of the event it comes from.
type Kind string

// The kinds of notification.
const (
	OrderConfirmed  Kind = "order_confirmed"
	OrderCancelled  Kind = "order_cancelled"
	OrderShipped    Kind = "order_shipped"
	OrderDelivered  Kind = "order_delivered"
	PaymentRefunded Kind = "payment_refunded"
)

// Kinds lists every kind.
var Kinds = []Kind{OrderConfirmed, OrderCancelled, OrderShipped, OrderDelivered, PaymentRefunded}

// Status is where a notification is in its delivery.
type Status string

// The statuses (see the package documentation).
const (
	StatusPending Status = "pending"
	StatusSending Status = "sending"
	StatusSent    Status = "sent"
	StatusNotSent Status = "not_sent"
	StatusFailed  Status = "failed"
)

// Statuses lists every status.
var Statuses = []Status{StatusPending, StatusSending, StatusSent, StatusNotSent, StatusFailed}

// Valid reports whether s is one of Statuses.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if s == v {
			return true
		}
	}
	return false
}

// ChannelEmail is the one channel: e-mail.
const ChannelEmail = "email"

// Reasons recorded with a status.
const (
	ReasonNoRecipient     = "waiting for the customer's e-mail address"
	ReasonNoServer        = "no SMTP server configured"
	ReasonCustomerRemoved = "the customer was removed"
	ReasonInterrupted     = "interrupted while sending: not retried, it may have been delivered"
)

// ErrNotFound: no notification with this id.
var ErrNotFound = errors.New("notification not found")

// Notification is one message to a customer.
type Notification struct {
	ID         string
	Kind       Kind
	OrderID    string
	CustomerID string // "" until known (a refund may arrive before any event of its order)
	Channel    string
	Recipient  string // the customer's e-mail address; "" until known
	Subject    string
	Text       string
	Status     Status
	Reason     string
	Attempts   int
	// NextAttemptAt is when a failed notification is tried again; nil: never.
	NextAttemptAt *time.Time
	EventID       string // uuid of the event it comes from
	Version       int64
	CreatedAt     time.Time
	SentAt        *time.Time
}

// Money is an amount in minor units of a currency.
type Money struct {
	Amount   int64
	Currency string
}

// String renders m as "12.34 EUR".
func (m Money) String() string {
	sign := ""
	a := m.Amount
	if a < 0 {
		sign, a = "-", -a
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, a/100, a%100, m.Currency)
}

// Facts are what the event tells about the order.
type Facts struct {
	OrderID            string
	CustomerID         string // "" when the event does not say (payment_refunded)
	Total              Money  // the order's total, or the refunded amount
	CancellationReason string // order_cancelled: out_of_stock, payment_declined, customer_requested
}

// Compose returns the subject and text a shop sends for kind.
func Compose(kind Kind, f Facts) (subject, text string, err error) {
	ref := shortRef(f.OrderID)
	switch kind {
	case OrderConfirmed:
		return "Your order " + ref + " is confirmed",
			"Hello,\n\nthank you for your order " + f.OrderID + ". We have received your payment of " + f.Total.String() +
				" and are preparing your parcel. We will write again when it leaves our warehouse.\n\nYour Sagittarius shop\n", nil
	case OrderCancelled:
		return "Your order " + ref + " was cancelled",
			"Hello,\n\nwe are sorry: your order " + f.OrderID + " was cancelled because " + cancellationText(f.CancellationReason) +
				". Nothing was charged, or the payment will be refunded in full.\n\nYour Sagittarius shop\n", nil
	case OrderShipped:
		return "Your order " + ref + " is on its way",
			"Hello,\n\nyour order " + f.OrderID + " has left our warehouse and is on its way to you.\n\nYour Sagittarius shop\n", nil
	case OrderDelivered:
		return "Your order " + ref + " was delivered",
			"Hello,\n\nyour order " + f.OrderID + " was delivered. We hope you enjoy it.\n\nYour Sagittarius shop\n", nil
	case PaymentRefunded:
		return "Your refund for order " + ref,
			"Hello,\n\nwe have refunded " + f.Total.String() + " for your order " + f.OrderID +
				". Depending on your bank, it shows on your statement within a few days.\n\nYour Sagittarius shop\n", nil
	}
	return "", "", fmt.Errorf("notification: unknown kind %q", kind)
}

// cancellationText says why in words a customer understands.
func cancellationText(reason string) string {
	switch reason {
	case "out_of_stock":
		return "some of its items are out of stock"
	case "payment_declined":
		return "the payment was declined"
	case "customer_requested":
		return "you asked us to cancel it"
	case "":
		return "of a problem on our side"
	}
	return strings.ReplaceAll(reason, "_", " ")
}

// shortRef is the first block of an order id, "#1a2b3c4d", as shops print it.
func shortRef(orderID string) string {
	ref, _, _ := strings.Cut(orderID, "-")
	if len(ref) > 12 {
		ref = ref[:12]
	}
	return "#" + ref
}

// RetryDelay is how long to wait before attempt number attempts+1 after a
// failed one: 2 s doubling, at most 5 minutes.
func RetryDelay(attempts int) time.Duration {
	d := 2 * time.Second
	for i := 1; i < attempts && d < 5*time.Minute; i++ {
		d *= 2
	}
	return min(d, 5*time.Minute)
}

// Filter selects a page of notifications.
type Filter struct {
	CustomerID string // "" for all
	Status     Status // "" for all
	Limit      int
	Offset     int
}

// Store keeps notifications for the HTTP API.
type Store interface {
	// Get returns the notification or ErrNotFound.
	Get(ctx context.Context, id string) (Notification, error)
	// List returns the notifications of f, oldest first, and their total count.
	List(ctx context.Context, f Filter) ([]Notification, int, error)
}

// Customer is what the service knows of a customer (its read model of crm.customers).
type Customer struct {
	ID      string
	Email   string
	Name    string
	Version int64
	Removed bool // customer_removed arrived: nothing more is sent to it
}
