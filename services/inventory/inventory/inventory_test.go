package inventory

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestMergeLines(t *testing.T) {
	long := string(make([]byte, MaxIDLength+1))
	tests := []struct {
		name    string
		in      []Line
		want    []Line
		wantErr bool
	}{
		{name: "none", in: nil, wantErr: true},
		{name: "one", in: []Line{{"p1", 2}}, want: []Line{{"p1", 2}}},
		{name: "merged and sorted", in: []Line{{"p2", 1}, {"p1", 2}, {"p2", 3}}, want: []Line{{"p1", 2}, {"p2", 4}}},
		{name: "zero quantity", in: []Line{{"p1", 0}}, wantErr: true},
		{name: "negative quantity", in: []Line{{"p1", 1}, {"p2", -1}}, wantErr: true},
		{name: "huge quantity", in: []Line{{"p1", MaxLineQuantity + 1}}, wantErr: true},
		{name: "empty product", in: []Line{{"", 1}}, wantErr: true},
		{name: "long product id", in: []Line{{long, 1}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MergeLines(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReserve(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		lines     []Line
		available map[string]int64
		status    ReservationStatus
		shortages []Shortage
	}{
		{name: "covered", lines: []Line{{"a", 2}, {"b", 1}}, available: map[string]int64{"a": 2, "b": 5}, status: Held},
		{name: "last unit", lines: []Line{{"a", 1}}, available: map[string]int64{"a": 1}, status: Held},
		{name: "one line short", lines: []Line{{"a", 2}, {"b", 6}}, available: map[string]int64{"a": 2, "b": 5},
			status: Rejected, shortages: []Shortage{{"b", 6, 5}}},
		{name: "unknown product has zero stock", lines: []Line{{"a", 1}, {"x", 1}}, available: map[string]int64{"a": 9},
			status: Rejected, shortages: []Shortage{{"x", 1, 0}}},
		{name: "all short", lines: []Line{{"a", 1}, {"b", 1}}, available: map[string]int64{},
			status: Rejected, shortages: []Shortage{{"a", 1, 0}, {"b", 1, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Reserve("o1", tt.lines, tt.available, now)
			if r.Status != tt.status || !reflect.DeepEqual(r.Shortages, tt.shortages) {
				t.Fatalf("got %s %v, want %s %v", r.Status, r.Shortages, tt.status, tt.shortages)
			}
			if tt.status == Rejected && r.Reason != ReasonOutOfStock {
				t.Fatalf("reason = %q", r.Reason)
			}
			if tt.status == Held && r.Reason != "" {
				t.Fatalf("held with reason %q", r.Reason)
			}
			if r.OrderID != "o1" || !reflect.DeepEqual(r.Lines, tt.lines) || !r.CreatedAt.Equal(now) {
				t.Fatalf("reservation %+v", r)
			}
		})
	}
}

func TestRelease(t *testing.T) {
	now := time.Now()
	tests := []struct {
		from   ReservationStatus
		wantOK bool
	}{
		{Held, true}, {Released, false}, {Rejected, false}, {Shipped, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.from), func(t *testing.T) {
			r := Reservation{OrderID: "o", Status: tt.from}
			got, ok := r.Release(now)
			if ok != tt.wantOK {
				t.Fatalf("ok = %v", ok)
			}
			if ok && (got.Status != Released || got.ReleasedAt == nil) {
				t.Fatalf("got %+v", got)
			}
			if !ok && !reflect.DeepEqual(got, r) {
				t.Fatalf("changed: %+v", got)
			}
		})
	}
}

func TestShip(t *testing.T) {
	now := time.Now()
	tests := []struct {
		from   ReservationStatus
		wantOK bool
	}{
		{Held, true}, {Released, false}, {Rejected, false}, {Shipped, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.from), func(t *testing.T) {
			r := Reservation{OrderID: "o", Status: tt.from}
			got, ok := r.Ship(now)
			if ok != tt.wantOK {
				t.Fatalf("ok = %v", ok)
			}
			if ok && (got.Status != Shipped || got.ShippedAt == nil || got.ReleasedAt != nil) {
				t.Fatalf("got %+v", got)
			}
			if !ok && !reflect.DeepEqual(got, r) {
				t.Fatalf("changed: %+v", got)
			}
		})
	}
}

func TestReplenish(t *testing.T) {
	tests := []struct {
		name    string
		item    StockItem
		qty     int64
		want    int64
		wantErr error
	}{
		{name: "adds", item: StockItem{Status: ProductActive, Available: 3, Version: 1}, qty: 2, want: 5},
		{name: "zero", item: StockItem{Status: ProductActive}, qty: 0, wantErr: ErrInvalid},
		{name: "negative", item: StockItem{Status: ProductActive}, qty: -4, wantErr: ErrInvalid},
		{name: "too many at once", item: StockItem{Status: ProductActive}, qty: MaxReplenishment + 1, wantErr: ErrInvalid},
		{name: "over the cap", item: StockItem{Status: ProductActive, Available: MaxAvailable}, qty: 1, wantErr: ErrInvalid},
		{name: "retired", item: StockItem{Status: ProductRetired}, qty: 1, wantErr: ErrProductRetired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.item.Replenish(tt.qty)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if got != tt.item {
					t.Fatalf("item changed on error: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Available != tt.want || got.Replenished != tt.item.Replenished+tt.qty || got.Version != tt.item.Version+1 {
				t.Fatalf("got %+v", got)
			}
		})
	}
}
