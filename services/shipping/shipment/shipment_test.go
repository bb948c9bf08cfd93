package shipment

import (
	"errors"
	"testing"
	"time"
)

func TestTransition(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		from, to Status
		changed  bool
		err      error
	}{
		{Scheduled, Dispatched, true, nil},
		{Dispatched, Delivered, true, nil},
		{Scheduled, Scheduled, false, nil},
		{Dispatched, Dispatched, false, nil},
		{Delivered, Delivered, false, nil},
		{Scheduled, Delivered, false, ErrIllegalTransition},
		{Dispatched, Scheduled, false, ErrIllegalTransition},
		{Delivered, Dispatched, false, ErrIllegalTransition},
		{Scheduled, Cancelled, false, ErrIllegalTransition},
		{Cancelled, Dispatched, false, ErrIllegalTransition},
		{Cancelled, Scheduled, false, ErrIllegalTransition},
		{Scheduled, "lost", false, ErrInvalid},
		{Scheduled, "", false, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(string(tt.from)+"->"+string(tt.to), func(t *testing.T) {
			s := Shipment{ID: "s", Status: tt.from, Version: 3}
			next, changed, err := s.Transition(tt.to, now)
			if !errors.Is(err, tt.err) || changed != tt.changed {
				t.Fatalf("changed %v err %v", changed, err)
			}
			if !changed {
				if next.Status != s.Status || next.Version != 3 {
					t.Fatalf("unchanged shipment changed: %+v", next)
				}
				return
			}
			if next.Status != tt.to || next.Version != 4 {
				t.Fatalf("next %+v", next)
			}
			if tt.to == Dispatched && next.DispatchedAt == nil || tt.to == Delivered && next.DeliveredAt == nil {
				t.Fatalf("timestamp missing: %+v", next)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		from Status
		ok   bool
	}{{Scheduled, true}, {Dispatched, false}, {Delivered, false}, {Cancelled, false}} {
		next, ok := Shipment{Status: tt.from, Version: 1}.Cancel(now)
		if ok != tt.ok {
			t.Fatalf("%s: ok %v", tt.from, ok)
		}
		if ok && (next.Status != Cancelled || next.CancelledAt == nil || next.Version != 2) {
			t.Fatalf("%s: %+v", tt.from, next)
		}
		if !ok && next.Status != tt.from {
			t.Fatalf("%s changed", tt.from)
		}
	}
}

func TestSchedule(t *testing.T) {
	s := Schedule("id", "o1", Address{Line1: "x"}, time.Now())
	if s.Status != Scheduled || s.Version != 1 || s.Address.IsZero() {
		t.Fatalf("%+v", s)
	}
}
