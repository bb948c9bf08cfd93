// Package auth verifies the OAuth 2.0 access tokens (JWT, RFC 9068) that
// every Sagittarius service and the gateway accept, and turns a verified
// token into a Principal: who calls, with which roles and scopes.
//
// The platform trusts one OpenID Connect issuer, configured by OIDC_ISSUER
// and OIDC_AUDIENCE (see ConfigFromEnv). The Verifier discovers the issuer's
// metadata (/.well-known/openid-configuration) and its keys (jwks_uri) on
// first use, checks each token's signature against an allow-list of
// asymmetric algorithms (never "none", never HS*), its issuer, audience,
// expiry, not-before and issued-at with a small bounded clock skew, refetches
// the keys when a token names an unknown key id (at most once per cool-down),
// and caches verified tokens by their SHA-256 so that a token is checked
// once, not once per request.
//
// For HTTP, Verifier.Guard wraps a handler with a Requirement (anonymous,
// any valid token, some roles, some scopes) and answers 401 or 403 as
// application/problem+json with an RFC 6750 WWW-Authenticate challenge;
// FromContext gives handlers the Principal.
package auth

import (
	"context"
	"slices"
	"time"
)

// Role is what a person or a machine client is allowed to be on the
// platform. A token carries its roles in the roles claim (see
// Config.RolesClaim).
type Role string

// The roles of the platform.
const (
	// RoleCustomer may read and change only their own data (orders,
	// payments, shipments, notifications of Principal.CustomerID).
	RoleCustomer Role = "customer"
	// RoleStaff runs the shop: catalog, stock, shipments, all orders and
	// customers.
	RoleStaff Role = "staff"
	// RoleOperator runs the platform: the operations endpoints.
	RoleOperator Role = "operator"
)

// Valid reports whether r is one of the platform's roles.
func (r Role) Valid() bool { return r == RoleCustomer || r == RoleStaff || r == RoleOperator }

// Principal is the verified caller of a request. A Principal returned by the
// Verifier is shared by every request carrying the same token: it must not
// be modified.
type Principal struct {
	// Subject is the token's sub: the account id of a person, or the
	// client id of a machine client (client credentials).
	Subject string
	// Roles are the platform roles the token grants; unknown role names in
	// the token are dropped.
	Roles []Role
	// Scopes are the OAuth scopes of the token (scope or scp claim).
	Scopes []string
	// ClientID is the OAuth client the token was issued to (client_id or
	// azp claim), "" when the token names none.
	ClientID string
	// CustomerID is the customer a customer's token identifies (claim
	// customer_id by default), "" for everyone else.
	CustomerID string
	// TokenID is the token's jti, "" when absent.
	TokenID string
	// ExpiresAt is the token's exp.
	ExpiresAt time.Time
}

// HasRole reports whether p has role r.
func (p *Principal) HasRole(r Role) bool { return p != nil && slices.Contains(p.Roles, r) }

// HasAnyRole reports whether p has at least one of roles.
func (p *Principal) HasAnyRole(roles ...Role) bool {
	for _, r := range roles {
		if p.HasRole(r) {
			return true
		}
	}
	return false
}

// HasScope reports whether p's token was granted scope s.
func (p *Principal) HasScope(s string) bool { return p != nil && slices.Contains(p.Scopes, s) }

// IsCustomer reports whether p acts as a customer: role customer and a
// customer id. A customer's access is confined to CustomerID's data.
func (p *Principal) IsCustomer() bool { return p.HasRole(RoleCustomer) && p.CustomerID != "" }

type principalKey struct{}

// WithPrincipal returns a copy of ctx carrying p. Guard calls it; tests and
// event handlers that act for someone may too.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the Principal of the request whose context is ctx, or
// (nil, false) for an anonymous request.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

// Confined reports whether the caller of ctx may see only one customer's
// data, and whose: a caller without role staff or operator (a customer, a
// machine client without those roles, or no caller at all) is confined to
// its Principal.CustomerID; "" then means no customer's data at all. Staff
// and operators are not confined.
func Confined(ctx context.Context) (customerID string, confined bool) {
	p, ok := FromContext(ctx)
	if ok && p.HasAnyRole(RoleStaff, RoleOperator) {
		return "", false
	}
	if !ok || !p.HasRole(RoleCustomer) {
		return "", true
	}
	return p.CustomerID, true
}

// Owns reports whether the caller of ctx may see the data of customerID:
// staff and operators see every customer's, a customer only their own.
func Owns(ctx context.Context, customerID string) bool {
	id, confined := Confined(ctx)
	return !confined || (id != "" && id == customerID)
}
