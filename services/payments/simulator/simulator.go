// Package simulator is the simulated payment provider of finance.payments. It talks to no one and
// answers deterministically, so that every path of the saga can be driven on purpose:
//
//   - payment token "tok_decline": declined with reason "card_declined";
//   - an empty payment token: declined with reason "invalid_payment_token";
//   - an amount below one minor unit or without a currency: declined with reason "invalid_amount";
//   - anything else: captured.
//
// References are derived from the order id ("sim_cap_…", "sim_dec_…", and "sim_ref_…" for refunds),
// so a retried charge or refund of the same order gets the same reference: the simulator is
// idempotent per order, like a real provider called with an idempotency key.
package simulator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/sagittarius-a/sagittarius/services/payments/payment"
)

// Tokens and reasons of the simulator.
const (
	DeclineToken        = "tok_decline"
	ReasonCardDeclined  = "card_declined"
	ReasonInvalidToken  = "invalid_payment_token"
	ReasonInvalidAmount = "invalid_amount"
	captureRefPrefix    = "sim_cap_"
	declineRefPrefix    = "sim_dec_"
	refundRefPrefix     = "sim_ref_"
)

// Provider is the simulated provider. The zero value is ready to use and safe for concurrent use.
type Provider struct{}

var _ payment.Provider = Provider{}

// Charge applies the package's rules to req. It never returns an error.
func (Provider) Charge(_ context.Context, req payment.ChargeRequest) (payment.ChargeResult, error) {
	decline := func(reason string) (payment.ChargeResult, error) {
		return payment.ChargeResult{Reason: reason, Reference: declineRefPrefix + digest(req.OrderID)}, nil
	}
	switch {
	case req.Token == DeclineToken:
		return decline(ReasonCardDeclined)
	case strings.TrimSpace(req.Token) == "":
		return decline(ReasonInvalidToken)
	case req.Amount.Amount < 1 || req.Amount.Currency == "":
		return decline(ReasonInvalidAmount)
	}
	return payment.ChargeResult{Captured: true, Reference: captureRefPrefix + digest(req.OrderID)}, nil
}

// Refund refunds a capture made by the simulator; it fails for any other reference.
func (Provider) Refund(_ context.Context, captureReference string, _ payment.Money) (string, error) {
	id, ok := strings.CutPrefix(captureReference, captureRefPrefix)
	if !ok || id == "" {
		return "", fmt.Errorf("simulator: %q is not a capture of this provider", captureReference)
	}
	return refundRefPrefix + id, nil
}

// digest is a short stable id derived from an order id.
func digest(orderID string) string {
	sum := sha256.Sum256([]byte(orderID))
	return hex.EncodeToString(sum[:12])
}
