package simulator

import (
	"context"
	"strings"
	"testing"

	"github.com/sagittarius-a/sagittarius/services/payments/payment"
)

func TestCharge(t *testing.T) {
	eur := func(n int64) payment.Money { return payment.Money{Amount: n, Currency: "EUR"} }
	tests := []struct {
		name     string
		token    string
		amount   payment.Money
		captured bool
		reason   string
	}{
		{"any token", "tok_visa", eur(1999), true, ""},
		{"another token", "tok_whatever", eur(1), true, ""},
		{"decline token", "tok_decline", eur(1999), false, ReasonCardDeclined},
		{"empty token", "", eur(1999), false, ReasonInvalidToken},
		{"blank token", "  ", eur(1999), false, ReasonInvalidToken},
		{"zero amount", "tok_visa", eur(0), false, ReasonInvalidAmount},
		{"negative amount", "tok_visa", eur(-5), false, ReasonInvalidAmount},
		{"no currency", "tok_visa", payment.Money{Amount: 5}, false, ReasonInvalidAmount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := payment.ChargeRequest{OrderID: "o1", Token: tt.token, Amount: tt.amount}
			res, err := Provider{}.Charge(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Captured != tt.captured || res.Reason != tt.reason || res.Reference == "" {
				t.Fatalf("got %+v", res)
			}
			again, _ := Provider{}.Charge(context.Background(), req)
			if again != res {
				t.Fatalf("not deterministic: %+v then %+v", res, again)
			}
		})
	}
}

func TestRefund(t *testing.T) {
	res, _ := Provider{}.Charge(context.Background(), payment.ChargeRequest{OrderID: "o1", Token: "tok_ok", Amount: payment.Money{Amount: 1, Currency: "EUR"}})
	ref, err := Provider{}.Refund(context.Background(), res.Reference, payment.Money{})
	if err != nil || !strings.HasPrefix(ref, "sim_ref_") {
		t.Fatalf("refund %q %v", ref, err)
	}
	if _, err := (Provider{}).Refund(context.Background(), "sim_dec_abc", payment.Money{}); err == nil {
		t.Fatal("refunded a declined attempt")
	}
	if _, err := (Provider{}).Refund(context.Background(), "", payment.Money{}); err == nil {
		t.Fatal("refunded nothing")
	}
}
