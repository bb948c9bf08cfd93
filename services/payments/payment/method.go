package payment

import (
	"fmt"
	"strings"
	"time"
	"unicode"
)

// Method is a payment method a customer registered with payments: the
// provider's token for a card or an account. The token stays in payments:
// an order refers to the method by its id, order_placed carries only that
// id, and no REST answer returns the token.
type Method struct {
	ID         string
	CustomerID string
	Token      string
	CreatedAt  time.Time
}

// MaxTokenLength is the longest payment token accepted.
const MaxTokenLength = 255

// NewMethod returns the method id of customerID for token, or an error
// wrapping ErrInvalid naming what is wrong (the field as a JSON pointer).
func NewMethod(id, customerID, token string, now time.Time) (Method, error) {
	switch {
	case customerID == "" || len(customerID) > MaxIDLength:
		return Method{}, fmt.Errorf("/customer_id: required, at most %d bytes: %w", MaxIDLength, ErrInvalid)
	case token == "" || len(token) > MaxTokenLength || strings.IndexFunc(token, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }) >= 0:
		return Method{}, fmt.Errorf("/token: required, 1 to %d printable characters without spaces: %w", MaxTokenLength, ErrInvalid)
	}
	return Method{ID: id, CustomerID: customerID, Token: token, CreatedAt: now}, nil
}

// TokenFor returns the token of m for an order of customerID: "" when there
// is no method or it belongs to another customer (the charge is then
// declined as an invalid payment token).
func TokenFor(m *Method, customerID string) string {
	if m == nil || m.CustomerID == "" || m.CustomerID != customerID {
		return ""
	}
	return m.Token
}
