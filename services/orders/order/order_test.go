package order

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func validInput() PlaceInput {
	return PlaceInput{
		CustomerID:      "c1",
		Lines:           []LineInput{{ProductID: "p1", Quantity: 2}, {ProductID: "p2", Quantity: 1}},
		PaymentMethodID: "tok_visa",
		ShippingAddress: Address{
			Name: "Ada Lovelace", Line1: "1 Main St", PostalCode: "10115", City: "Berlin", Country: "DE",
		},
	}
}

func eur(n int64) *Money { return &Money{Amount: n, Currency: "EUR"} }

func catalog() map[string]Product {
	return map[string]Product{
		"p1":       {ID: "p1", Name: "Mug", Active: true, Price: eur(1250)},
		"p2":       {ID: "p2", Name: "Tea", Active: true, Price: eur(399)},
		"retired":  {ID: "retired", Name: "Old", Active: false, Price: eur(100)},
		"unpriced": {ID: "unpriced", Name: "New", Active: true},
		"usd":      {ID: "usd", Name: "Hat", Active: true, Price: &Money{Amount: 100, Currency: "USD"}},
		"huge":     {ID: "huge", Name: "Yacht", Active: true, Price: eur(math.MaxInt64 / 2)},
	}
}

func TestPlace(t *testing.T) {
	active := &Customer{ID: "c1", Active: true}
	tests := []struct {
		name     string
		edit     func(*PlaceInput)
		customer *Customer
		fields   []string // expected invalid fields; none means success
	}{
		{name: "valid", edit: func(*PlaceInput) {}, customer: active},
		{name: "unknown customer", edit: func(*PlaceInput) {}, customer: nil, fields: []string{"/customer_id"}},
		{name: "inactive customer", edit: func(*PlaceInput) {}, customer: &Customer{ID: "c1"}, fields: []string{"/customer_id"}},
		{name: "no customer id", edit: func(in *PlaceInput) { in.CustomerID = "" }, customer: active, fields: []string{"/customer_id"}},
		{name: "no lines", edit: func(in *PlaceInput) { in.Lines = nil }, customer: active, fields: []string{"/lines"}},
		{name: "too many lines", customer: active, fields: []string{"/lines"}, edit: func(in *PlaceInput) {
			in.Lines = make([]LineInput, MaxLines+1)
		}},
		{name: "quantity zero", edit: func(in *PlaceInput) { in.Lines[0].Quantity = 0 }, customer: active, fields: []string{"/lines/0/quantity"}},
		{name: "quantity negative", edit: func(in *PlaceInput) { in.Lines[1].Quantity = -1 }, customer: active, fields: []string{"/lines/1/quantity"}},
		{name: "quantity max", edit: func(in *PlaceInput) { in.Lines[0].Quantity = MaxQuantity }, customer: active},
		{name: "quantity too big", edit: func(in *PlaceInput) { in.Lines[0].Quantity = MaxQuantity + 1 }, customer: active, fields: []string{"/lines/0/quantity"}},
		{name: "duplicate product", edit: func(in *PlaceInput) { in.Lines[1].ProductID = "p1" }, customer: active, fields: []string{"/lines/1/product_id"}},
		{name: "missing product id", edit: func(in *PlaceInput) { in.Lines[1].ProductID = "" }, customer: active, fields: []string{"/lines/1/product_id"}},
		{name: "unknown product", edit: func(in *PlaceInput) { in.Lines[1].ProductID = "nope" }, customer: active, fields: []string{"/lines/1/product_id"}},
		{name: "retired product", edit: func(in *PlaceInput) { in.Lines[0].ProductID = "retired" }, customer: active, fields: []string{"/lines/0/product_id"}},
		{name: "unpriced product", edit: func(in *PlaceInput) { in.Lines[0].ProductID = "unpriced" }, customer: active, fields: []string{"/lines/0/product_id"}},
		{name: "mixed currencies", edit: func(in *PlaceInput) { in.Lines[1].ProductID = "usd" }, customer: active, fields: []string{"/lines/1/product_id"}},
		{name: "total overflow", customer: active, fields: []string{"/lines/1/product_id"}, edit: func(in *PlaceInput) {
			in.Lines = []LineInput{{ProductID: "huge", Quantity: 2}, {ProductID: "p1", Quantity: 1}}
		}},
		{name: "no payment token", edit: func(in *PlaceInput) { in.PaymentMethodID = "" }, customer: active, fields: []string{"/payment_method_id"}},
		{name: "bad payment token", edit: func(in *PlaceInput) { in.PaymentMethodID = "tok visa" }, customer: active, fields: []string{"/payment_method_id"}},
		{name: "no address", edit: func(in *PlaceInput) { in.ShippingAddress = Address{} }, customer: active, fields: []string{
			"/shipping_address/name", "/shipping_address/line1", "/shipping_address/postal_code",
			"/shipping_address/city", "/shipping_address/country"}},
		{name: "lower-case country", edit: func(in *PlaceInput) { in.ShippingAddress.Country = "de" }, customer: active, fields: []string{"/shipping_address/country"}},
		{name: "long city", edit: func(in *PlaceInput) { in.ShippingAddress.City = strings.Repeat("x", 201) }, customer: active, fields: []string{"/shipping_address/city"}},
		{name: "invalid utf-8", edit: func(in *PlaceInput) { in.ShippingAddress.Line2 = "\xff" }, customer: active, fields: []string{"/shipping_address/line2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := validInput()
			tt.edit(&in)
			o, err := Place("o1", in, tt.customer, catalog(), t0)
			if len(tt.fields) == 0 {
				if err != nil {
					t.Fatalf("Place: %v", err)
				}
				if o.Status != StatusPending || o.Version != 1 || !o.PlacedAt.Equal(t0) {
					t.Errorf("got status %s version %d placed %v", o.Status, o.Version, o.PlacedAt)
				}
				return
			}
			var v *ValidationError
			if !errors.As(err, &v) {
				t.Fatalf("Place error = %v, want *ValidationError", err)
			}
			got := map[string]bool{}
			for _, f := range v.Fields {
				got[f.Field] = true
			}
			for _, f := range tt.fields {
				if !got[f] {
					t.Errorf("missing field error %s; got %v", f, v.Fields)
				}
			}
			if len(got) != len(tt.fields) {
				t.Errorf("field errors %v, want exactly %v", v.Fields, tt.fields)
			}
		})
	}
}

func TestPlacePricesLines(t *testing.T) {
	o, err := Place("o1", validInput(), &Customer{ID: "c1", Active: true}, catalog(), t0)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Money{Amount: 2*1250 + 399, Currency: "EUR"}); o.Total != want {
		t.Errorf("total = %+v, want %+v", o.Total, want)
	}
	if len(o.Lines) != 2 || o.Lines[0].ProductName != "Mug" || o.Lines[0].Total().Amount != 2500 {
		t.Errorf("lines = %+v", o.Lines)
	}
}

func TestStatusTransitions(t *testing.T) {
	allowed := map[[2]Status]bool{
		{StatusPending, StatusConfirmed}:   true,
		{StatusPending, StatusCancelled}:   true,
		{StatusConfirmed, StatusShipped}:   true,
		{StatusConfirmed, StatusDelivered}: true,
		{StatusConfirmed, StatusCancelled}: true,
		{StatusShipped, StatusDelivered}:   true,
	}
	for _, from := range Statuses {
		if !from.Valid() {
			t.Errorf("%s not valid", from)
		}
		for _, to := range Statuses {
			if got := from.CanBecome(to); got != allowed[[2]Status{from, to}] {
				t.Errorf("%s -> %s: CanBecome = %v", from, to, got)
			}
		}
	}
	if Status("lost").Valid() {
		t.Error("unknown status is valid")
	}
}

func at(s Status) *Order { return &Order{ID: "o1", Status: s, Version: 3} }

func TestCancel(t *testing.T) {
	for _, tt := range []struct {
		from Status
		ok   bool
	}{
		{StatusPending, true}, {StatusConfirmed, true},
		{StatusCancelled, false}, {StatusShipped, false}, {StatusDelivered, false},
	} {
		o := at(tt.from)
		err := o.Cancel(ReasonCustomerRequested, t0)
		if tt.ok {
			if err != nil || o.Status != StatusCancelled || o.CancellationReason != ReasonCustomerRequested || o.Version != 4 {
				t.Errorf("from %s: err %v, order %+v", tt.from, err, o)
			}
			continue
		}
		if !errors.Is(err, ErrNotCancellable) || o.Status != tt.from || o.Version != 3 {
			t.Errorf("from %s: err %v, order %+v; want ErrNotCancellable and no change", tt.from, err, o)
		}
	}
}

// TestSagaSteps checks every saga method from every status: whether the
// status changes, what it becomes, and that a repeat changes nothing.
func TestSagaSteps(t *testing.T) {
	steps := map[string]func(o *Order) bool{
		"reject":  func(o *Order) bool { return o.Reject(ReasonOutOfStock, "", t0) },
		"decline": func(o *Order) bool { return o.Reject(ReasonPaymentDeclined, "pay1", t0) },
		"confirm": func(o *Order) bool { return o.Confirm("pay1", t0) },
		"ship":    func(o *Order) bool { return o.Ship("s1", t0) },
		"deliver": func(o *Order) bool { return o.Deliver("s1", t0) },
		"attach":  func(o *Order) bool { return o.AttachShipment("s1", t0) },
	}
	want := map[string]map[Status]Status{ // step -> from -> to (absent: unchanged)
		"reject":  {StatusPending: StatusCancelled},
		"decline": {StatusPending: StatusCancelled},
		"confirm": {StatusPending: StatusConfirmed},
		"ship":    {StatusConfirmed: StatusShipped},
		"deliver": {StatusConfirmed: StatusDelivered, StatusShipped: StatusDelivered},
		"attach":  {},
	}
	for name, step := range steps {
		for _, from := range Statuses {
			o := at(from)
			changed := step(o)
			to, ok := want[name][from]
			if !ok {
				to = from
			}
			if changed && o.Version != 4 {
				t.Errorf("%s from %s: version %d, want one bump to 4", name, from, o.Version)
			}
			if changed != ok || o.Status != to {
				t.Errorf("%s from %s: changed=%v status=%s; want changed=%v status=%s", name, from, changed, o.Status, ok, to)
			}
			v := o.Version
			if step(o) || o.Version != v {
				t.Errorf("%s from %s: repeating it changed the order again (version %d -> %d)", name, from, v, o.Version)
			}
		}
	}
}

func TestSagaStepsRecordIDs(t *testing.T) {
	o := at(StatusCancelled)
	o.Confirm("pay1", t0) // late capture after a customer cancellation
	if o.Status != StatusCancelled || o.PaymentID != "pay1" || o.Version != 4 {
		t.Errorf("late capture: %+v", o)
	}
	o = at(StatusPending)
	o.Reject(ReasonOutOfStock, "", t0)
	if o.CancellationReason != ReasonOutOfStock || o.PaymentID != "" || o.Version != 4 {
		t.Errorf("reject: %+v", o)
	}
	o = at(StatusConfirmed)
	o.AttachShipment("s1", t0)
	o.Ship("s2", t0)                                                         // the first id learned stays
	if o.ShipmentID != "s1" || o.Status != StatusShipped || o.Version != 5 { // one bump per step
		t.Errorf("ship: %+v", o)
	}
}
