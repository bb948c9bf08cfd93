package main

// Fault injection, for fault tests only (scripts/chaos). Production never sets FAULT_INJECT; when it
// is unset nothing here runs and the provider is the simulator itself.
//
// FAULT_INJECT is a comma-separated list of directives, each naming a payment token:
//
//	fail-charge=<token>   every charge with <token> fails with a permanent error: the event being
//	                      handled is dead-lettered at once (a handler that fails for one order)
//	flaky-charge=<token>  the first two charges of each order with <token> fail with an ordinary
//	                      error (retried by the bus through its retry queues), the third goes through
//
// Only the provider is wrapped: the handlers, the store and the bus run unchanged.

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/services/payments/payment"
)

// faults is a parsed FAULT_INJECT.
type faults struct {
	fail, flaky map[string]bool // payment tokens
}

// parseFaults parses FAULT_INJECT; "" gives no faults.
func parseFaults(s string) (faults, error) {
	f := faults{fail: map[string]bool{}, flaky: map[string]bool{}}
	for _, d := range strings.Split(s, ",") {
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		kind, token, ok := strings.Cut(d, "=")
		switch {
		case !ok || token == "":
			return f, fmt.Errorf("FAULT_INJECT: %q: want fail-charge=<token> or flaky-charge=<token>", d)
		case kind == "fail-charge":
			f.fail[token] = true
		case kind == "flaky-charge":
			f.flaky[token] = true
		default:
			return f, fmt.Errorf("FAULT_INJECT: unknown fault %q (known: fail-charge, flaky-charge)", kind)
		}
	}
	return f, nil
}

func (f faults) none() bool { return len(f.fail) == 0 && len(f.flaky) == 0 }

// faultyProvider is a payment.Provider that fails charges as faults says and otherwise asks next.
type faultyProvider struct {
	next   payment.Provider
	faults faults

	mu    sync.Mutex
	tries map[string]int // order id -> failed flaky charges
}

func newFaultyProvider(next payment.Provider, f faults) *faultyProvider {
	return &faultyProvider{next: next, faults: f, tries: map[string]int{}}
}

// Charge implements payment.Provider.
func (p *faultyProvider) Charge(ctx context.Context, req payment.ChargeRequest) (payment.ChargeResult, error) {
	if p.faults.fail[req.Token] {
		return payment.ChargeResult{}, eventbus.Permanent(fmt.Errorf("FAULT_INJECT fail-charge: the provider refuses token %q for order %s", req.Token, req.OrderID))
	}
	if p.faults.flaky[req.Token] {
		p.mu.Lock()
		n := p.tries[req.OrderID]
		if n < 2 {
			p.tries[req.OrderID] = n + 1
		}
		p.mu.Unlock()
		if n < 2 {
			return payment.ChargeResult{}, fmt.Errorf("FAULT_INJECT flaky-charge: the provider is unavailable for order %s (failure %d of 2)", req.OrderID, n+1)
		}
	}
	return p.next.Charge(ctx, req)
}

// Refund implements payment.Provider.
func (p *faultyProvider) Refund(ctx context.Context, captureReference string, amount payment.Money) (string, error) {
	return p.next.Refund(ctx, captureReference, amount)
}
