package main

import (
	"context"
	"errors"
	"testing"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/services/payments/payment"
	"github.com/sagittarius-a/sagittarius/services/payments/simulator"
)

func TestParseFaults(t *testing.T) {
	f, err := parseFaults("")
	if err != nil || !f.none() {
		t.Fatalf("empty: %+v, %v", f, err)
	}
	f, err = parseFaults(" fail-charge=tok_a, flaky-charge=tok_b ,")
	if err != nil || !f.fail["tok_a"] || !f.flaky["tok_b"] || f.none() {
		t.Fatalf("got %+v, %v", f, err)
	}
	for _, bad := range []string{"fail-charge", "fail-charge=", "boom=tok_a", "=tok_a"} {
		if _, err := parseFaults(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestFaultyProvider(t *testing.T) {
	f, _ := parseFaults("fail-charge=tok_fail,flaky-charge=tok_flaky")
	p := newFaultyProvider(simulator.Provider{}, f)
	ctx := context.Background()
	amount := payment.Money{Amount: 100, Currency: "EUR"}

	_, err := p.Charge(ctx, payment.ChargeRequest{OrderID: "o1", Token: "tok_fail", Amount: amount})
	var perm *eventbus.PermanentError
	if !errors.As(err, &perm) {
		t.Fatalf("fail-charge: %v, want a permanent error", err)
	}

	for try := 1; try <= 2; try++ {
		_, err := p.Charge(ctx, payment.ChargeRequest{OrderID: "o2", Token: "tok_flaky", Amount: amount})
		if err == nil || errors.As(err, &perm) {
			t.Fatalf("flaky-charge try %d: %v, want an ordinary error", try, err)
		}
	}
	res, err := p.Charge(ctx, payment.ChargeRequest{OrderID: "o2", Token: "tok_flaky", Amount: amount})
	if err != nil || !res.Captured {
		t.Fatalf("flaky-charge third try: %+v, %v", res, err)
	}
	// Another order with the flaky token fails twice on its own.
	if _, err := p.Charge(ctx, payment.ChargeRequest{OrderID: "o3", Token: "tok_flaky", Amount: amount}); err == nil {
		t.Fatal("flaky-charge: a new order's first charge succeeded")
	}
	// Other tokens, and refunds, go to the simulator unchanged.
	res, err = p.Charge(ctx, payment.ChargeRequest{OrderID: "o4", Token: "tok_visa", Amount: amount})
	if err != nil || !res.Captured {
		t.Fatalf("ordinary token: %+v, %v", res, err)
	}
	if _, err := p.Refund(ctx, res.Reference, amount); err != nil {
		t.Fatalf("refund: %v", err)
	}
}
