// Package inventory is the domain of logistics.inventory: stock per product, replenishments, and the
// reservation of stock for orders.
//
// Rules:
//   - Stock is kept for products the catalog announced (product_added). A product unknown to inventory
//     has zero stock; a retired product keeps its stock but cannot be replenished.
//   - Available stock never goes below zero. A reservation covers every line of an order or none:
//     when one line cannot be covered the whole reservation is rejected (out_of_stock) and nothing is held.
//   - A held reservation is released at most once, when its order is cancelled; the stock goes back to
//     available. An order cancelled before it was seen placed is remembered and its reservation rejected.
//   - A held reservation is shipped at most once, when its order's shipment is dispatched: the goods
//     leave, so the held quantity is counted down for good (reserved -> shipped). Released and shipped
//     are final: whichever of the order's cancellation and its shipment's dispatch comes first wins.
//   - For every product: available + reserved + shipped = replenished (the sum of its replenishments).
//
// The package has no transport or storage imports; the mysql package stores it, httpapi and eventapi
// drive it.
package inventory

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Errors of the domain. The HTTP layer maps them to statuses in one place.
var (
	ErrNotFound       = errors.New("not found")       // no such stock item, replenishment or reservation
	ErrProductRetired = errors.New("product retired") // the catalog retired the product
	ErrInvalid        = errors.New("invalid")         // an input breaks a rule; wrapped with the detail
)

// Limits of quantities, well inside int64 so that sums cannot overflow.
const (
	MaxReplenishment = 1_000_000     // units per replenishment
	MaxLineQuantity  = 1_000_000     // units per order line
	MaxAvailable     = 1_000_000_000 // units of one product in stock
	MaxIDLength      = 100           // bytes of a product or order id
)

// ProductStatus is the catalog's status of a product as inventory knows it.
type ProductStatus string

// Product statuses.
const (
	ProductActive  ProductStatus = "active"
	ProductRetired ProductStatus = "retired"
)

// StockItem is the stock of one product.
type StockItem struct {
	ProductID   string
	ProductName string
	Status      ProductStatus
	Available   int64 // can be reserved; never below zero
	Reserved    int64 // held by reservations
	Shipped     int64 // left with dispatched shipments
	Replenished int64 // the sum of every replenishment: Available + Reserved + Shipped
	Version     int64 // grows with every change
	UpdatedAt   time.Time
}

// Replenishment is one arrival of stock for a product.
type Replenishment struct {
	ID        string
	ProductID string
	Quantity  int64
	CreatedAt time.Time
}

// ValidateReplenishment checks the quantity of a replenishment: 1..MaxReplenishment.
func ValidateReplenishment(quantity int64) error {
	if quantity < 1 || quantity > MaxReplenishment {
		return fmt.Errorf("%w: quantity must be from 1 to %d", ErrInvalid, MaxReplenishment)
	}
	return nil
}

// Replenish returns item with quantity more units available. It fails with ErrProductRetired for a
// retired product and with ErrInvalid when the quantity is out of range or the stock would exceed
// MaxAvailable.
func (item StockItem) Replenish(quantity int64) (StockItem, error) {
	if err := ValidateReplenishment(quantity); err != nil {
		return item, err
	}
	if item.Status == ProductRetired {
		return item, fmt.Errorf("product %s: %w: it cannot be replenished", item.ProductID, ErrProductRetired)
	}
	if item.Available+quantity > MaxAvailable {
		return item, fmt.Errorf("%w: product %s would have more than %d units available", ErrInvalid, item.ProductID, MaxAvailable)
	}
	item.Available += quantity
	item.Replenished += quantity
	item.Version++
	return item, nil
}

// ReservationStatus is the state of a reservation.
type ReservationStatus string

// Reservation statuses: held -> released or held -> shipped; rejected, released and shipped are final.
const (
	Held     ReservationStatus = "held"
	Rejected ReservationStatus = "rejected"
	Released ReservationStatus = "released"
	Shipped  ReservationStatus = "shipped"
)

// Reasons of a rejected reservation (the public values of stockevents).
const (
	ReasonOutOfStock     = "out_of_stock"
	ReasonOrderCancelled = "order_cancelled"
	ReasonInvalidOrder   = "invalid_order"
)

// Line is a quantity of one product.
type Line struct {
	ProductID string
	Quantity  int64
}

// Shortage is a line that the stock could not cover.
type Shortage struct {
	ProductID string
	Requested int64
	Available int64
}

// Reservation is the stock set aside for one order (one per order).
type Reservation struct {
	OrderID    string
	Status     ReservationStatus
	Reason     string     // for Rejected
	Lines      []Line     // one per product, sorted by product id
	Shortages  []Shortage // for ReasonOutOfStock, sorted by product id
	CreatedAt  time.Time
	ReleasedAt *time.Time
	ShippedAt  *time.Time
}

// MergeLines returns lines with one line per product (quantities added up), sorted by product id, so
// that rows are always locked in the same order. It fails with ErrInvalid when there is no line, a
// product id is empty or too long, or a quantity is out of 1..MaxLineQuantity.
func MergeLines(lines []Line) ([]Line, error) {
	if len(lines) == 0 {
		return nil, fmt.Errorf("%w: an order needs at least one line", ErrInvalid)
	}
	sum := make(map[string]int64, len(lines))
	for i, l := range lines {
		if l.ProductID == "" || len(l.ProductID) > MaxIDLength {
			return nil, fmt.Errorf("%w: line %d: product id must have 1 to %d bytes", ErrInvalid, i, MaxIDLength)
		}
		if l.Quantity < 1 || l.Quantity > MaxLineQuantity {
			return nil, fmt.Errorf("%w: line %d: quantity must be from 1 to %d", ErrInvalid, i, MaxLineQuantity)
		}
		sum[l.ProductID] += l.Quantity // at most len(lines) * MaxLineQuantity: no overflow
	}
	out := make([]Line, 0, len(sum))
	for id, q := range sum {
		out = append(out, Line{ProductID: id, Quantity: q})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProductID < out[j].ProductID })
	return out, nil
}

// Reserve decides the reservation of an order: lines must come from MergeLines; available holds the
// available stock of the products that are known (a product missing from it has zero stock). The
// result is Held when every line is covered, else Rejected with ReasonOutOfStock and a Shortage per
// uncovered line. Reserve does not change available.
func Reserve(orderID string, lines []Line, available map[string]int64, now time.Time) Reservation {
	r := Reservation{OrderID: orderID, Status: Held, Lines: lines, CreatedAt: now}
	for _, l := range lines {
		if have := available[l.ProductID]; have < l.Quantity {
			r.Shortages = append(r.Shortages, Shortage{ProductID: l.ProductID, Requested: l.Quantity, Available: have})
		}
	}
	if len(r.Shortages) > 0 {
		r.Status, r.Reason = Rejected, ReasonOutOfStock
	}
	return r
}

// Reject returns the rejected reservation of an order for reason (ReasonOrderCancelled,
// ReasonInvalidOrder), holding nothing.
func Reject(orderID string, lines []Line, reason string, now time.Time) Reservation {
	return Reservation{OrderID: orderID, Status: Rejected, Reason: reason, Lines: lines, CreatedAt: now}
}

// Release returns r released at now. ok is false, and r unchanged, when r is not held: a reservation
// is released at most once and a rejected one holds nothing.
func (r Reservation) Release(now time.Time) (released Reservation, ok bool) {
	if r.Status != Held {
		return r, false
	}
	r.Status = Released
	r.ReleasedAt = &now
	return r, true
}

// Ship returns r shipped at now: its goods left with the order's shipment. ok is false, and r
// unchanged, when r is not held: a reservation is shipped at most once, a released one gave its stock
// back, and a rejected one holds nothing.
func (r Reservation) Ship(now time.Time) (shipped Reservation, ok bool) {
	if r.Status != Held {
		return r, false
	}
	r.Status = Shipped
	r.ShippedAt = &now
	return r, true
}

// ValidID reports whether id can name a product or an order: 1..MaxIDLength bytes.
func ValidID(id string) bool { return id != "" && len(id) <= MaxIDLength }

// StockFilter selects stock items; zero fields select all.
type StockFilter struct {
	Status ProductStatus
}

// ReservationFilter selects reservations; zero fields select all.
type ReservationFilter struct {
	Status    ReservationStatus
	ProductID string // reservations with a line of this product
}
