package order

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of an order.
const (
	MaxLines       = 100  // lines per order
	MaxQuantity    = 1000 // units per line
	maxTextLen     = 200  // runes in a token, name or address field
	maxIDLen       = 64   // bytes in a customer or product id
	paymentTokenRe = `^[A-Za-z0-9_\-]{1,200}$`
)

var (
	countryRe = regexp.MustCompile(`^[A-Z]{2}$`)
	tokenRe   = regexp.MustCompile(paymentTokenRe)
)

// PlaceInput is what a client asks for when placing an order.
type PlaceInput struct {
	CustomerID      string
	Lines           []LineInput
	PaymentMethodID string
	ShippingAddress Address
}

// LineInput is one requested line: a product and how many units of it.
type LineInput struct {
	ProductID string
	Quantity  int
}

// Customer is what orders knows about a customer, from crm.customers events.
type Customer struct {
	ID     string
	Active bool
}

// Product is what orders knows about a product, from catalog.products events.
// Price is nil when the catalog has not priced it.
type Product struct {
	ID     string
	Name   string
	Active bool
	Price  *Money
}

// FieldError names an invalid field of a request by its JSON pointer (such
// as "/lines/2/quantity") and says what is wrong with it.
type FieldError struct {
	Field   string
	Message string
}

// ValidationError lists every invalid field of a request.
type ValidationError struct {
	Fields []FieldError
}

// Error implements error.
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid order: " + strings.Join(parts, "; ")
}

func (e *ValidationError) add(field, format string, args ...any) {
	e.Fields = append(e.Fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (e *ValidationError) err() error {
	if len(e.Fields) == 0 {
		return nil
	}
	return e
}

// Validate checks the shape of the input alone (no read models): a customer
// id, 1..MaxLines lines of distinct products with quantities 1..MaxQuantity,
// a payment token and a complete shipping address. It returns a
// *ValidationError listing every problem, or nil.
func (in PlaceInput) Validate() error {
	var v ValidationError
	checkID(&v, "/customer_id", in.CustomerID)
	switch {
	case len(in.Lines) == 0:
		v.add("/lines", "an order needs at least one line")
	case len(in.Lines) > MaxLines:
		v.add("/lines", "an order has at most %d lines", MaxLines)
	default:
		seen := make(map[string]int, len(in.Lines))
		for i, l := range in.Lines {
			field := fmt.Sprintf("/lines/%d", i)
			checkID(&v, field+"/product_id", l.ProductID)
			if j, dup := seen[l.ProductID]; dup && l.ProductID != "" {
				v.add(field+"/product_id", "product already ordered in /lines/%d; combine the quantities", j)
			}
			seen[l.ProductID] = i
			if l.Quantity < 1 || l.Quantity > MaxQuantity {
				v.add(field+"/quantity", "must be between 1 and %d", MaxQuantity)
			}
		}
	}
	if !tokenRe.MatchString(in.PaymentMethodID) {
		v.add("/payment_method_id", "required: 1 to 200 letters, digits, '_' or '-'")
	}
	a := in.ShippingAddress
	checkText(&v, "/shipping_address/name", a.Name, true)
	checkText(&v, "/shipping_address/line1", a.Line1, true)
	checkText(&v, "/shipping_address/line2", a.Line2, false)
	checkText(&v, "/shipping_address/postal_code", a.PostalCode, true)
	checkText(&v, "/shipping_address/city", a.City, true)
	if !countryRe.MatchString(a.Country) {
		v.add("/shipping_address/country", "required: ISO 3166-1 alpha-2 code in upper case, e.g. DE")
	}
	return v.err()
}

func checkID(v *ValidationError, field, id string) {
	switch {
	case id == "":
		v.add(field, "required")
	case len(id) > maxIDLen || !utf8.ValidString(id):
		v.add(field, "not a valid id")
	}
}

func checkText(v *ValidationError, field, s string, required bool) {
	switch {
	case required && strings.TrimSpace(s) == "":
		v.add(field, "required")
	case !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxTextLen:
		v.add(field, "at most %d characters of valid UTF-8", maxTextLen)
	}
}

// Place builds a new pending order from in, pricing its lines from products.
// customer is nil when unknown; products holds the known products by id.
// It returns a *ValidationError when the input is malformed, the customer is
// unknown or inactive, a product is unknown, retired or unpriced, or the
// prices are in different currencies.
func Place(id string, in PlaceInput, customer *Customer, products map[string]Product, now time.Time) (*Order, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	var v ValidationError
	switch {
	case customer == nil:
		v.add("/customer_id", "unknown customer")
	case !customer.Active:
		v.add("/customer_id", "customer is not active")
	}
	now = now.UTC()
	o := &Order{
		ID:              id,
		CustomerID:      in.CustomerID,
		PaymentMethodID: in.PaymentMethodID,
		ShippingAddress: in.ShippingAddress,
		Status:          StatusPending,
		Version:         1,
		PlacedAt:        now,
		UpdatedAt:       now,
	}
	for i, l := range in.Lines {
		field := fmt.Sprintf("/lines/%d/product_id", i)
		p, ok := products[l.ProductID]
		switch {
		case !ok:
			v.add(field, "unknown product")
			continue
		case !p.Active:
			v.add(field, "product is no longer sold")
			continue
		case p.Price == nil || p.Price.Currency == "" || p.Price.Amount < 0:
			v.add(field, "product has no price yet")
			continue
		case p.Price.Amount > 0 && p.Price.Amount > (math.MaxInt64-o.Total.Amount)/int64(l.Quantity):
			v.add(field, "order total too large")
			continue
		}
		if o.Total.Currency == "" {
			o.Total.Currency = p.Price.Currency
		}
		if p.Price.Currency != o.Total.Currency {
			v.add(field, "priced in %s, the order is in %s", p.Price.Currency, o.Total.Currency)
			continue
		}
		line := Line{ProductID: p.ID, ProductName: p.Name, Quantity: l.Quantity, UnitPrice: *p.Price}
		o.Lines = append(o.Lines, line)
		o.Total.Amount += line.Total().Amount
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	return o, nil
}
