package payment

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestChargeDue(t *testing.T) {
	placed := Order{ID: "o", Placed: true, StockReserved: true}
	tests := []struct {
		name     string
		order    Order
		existing *Payment
		want     bool
	}{
		{"placed and reserved", placed, nil, true},
		{"not placed yet", Order{ID: "o", StockReserved: true}, nil, false},
		{"not reserved yet", Order{ID: "o", Placed: true}, nil, false},
		{"cancelled", Order{ID: "o", Placed: true, StockReserved: true, Cancelled: true}, nil, false},
		{"already charged", placed, &Payment{Status: Captured}, false},
		{"already declined", placed, &Payment{Status: Declined}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ChargeDue(tt.order, tt.existing); got != tt.want {
				t.Fatalf("ChargeDue = %v", got)
			}
		})
	}
}

type fakeProvider struct {
	res ChargeResult
	err error
}

func (f fakeProvider) Charge(context.Context, ChargeRequest) (ChargeResult, error) {
	return f.res, f.err
}
func (f fakeProvider) Refund(_ context.Context, ref string, _ Money) (string, error) {
	return "ref-" + ref, f.err
}

func TestChargeAndRefund(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	o := Order{ID: "o1", Total: Money{Amount: 500, Currency: "EUR"}, PaymentToken: "tok", Placed: true, StockReserved: true}
	ctx := context.Background()

	p, err := Charge(ctx, fakeProvider{res: ChargeResult{Captured: true, Reference: "cap"}}, o, "pay-1", now)
	if err != nil || p.Status != Captured || p.CapturedAt == nil || p.Amount != o.Total || p.ID != "pay-1" || p.Version != 1 {
		t.Fatalf("captured: %+v %v", p, err)
	}
	if !RefundDue(&p) {
		t.Fatal("captured payment not refundable")
	}
	r, err := Refund(ctx, fakeProvider{}, p, now)
	if err != nil || r.Status != Refunded || r.RefundedAt == nil || r.RefundReference != "ref-cap" || r.Version != 2 {
		t.Fatalf("refunded: %+v %v", r, err)
	}
	if RefundDue(&r) {
		t.Fatal("refund due twice")
	}
	if _, err := Refund(ctx, fakeProvider{}, r, now); !errors.Is(err, ErrInvalid) {
		t.Fatalf("second refund: %v", err)
	}

	d, err := Charge(ctx, fakeProvider{res: ChargeResult{Reason: "card_declined", Reference: "dec"}}, o, "pay-2", now)
	if err != nil || d.Status != Declined || d.Reason != "card_declined" || d.DeclinedAt == nil || d.CapturedAt != nil {
		t.Fatalf("declined: %+v %v", d, err)
	}
	if RefundDue(&d) {
		t.Fatal("declined payment refundable")
	}
	if _, err := Charge(ctx, fakeProvider{err: errors.New("down")}, o, "pay-3", now); err == nil {
		t.Fatal("provider error swallowed")
	}
}
