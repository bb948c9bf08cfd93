// Package authtest is an OpenID provider for tests: discovery and a JWKS on
// an httptest server, and access tokens signed with its RS256 key, so that a
// service under test verifies real tokens with internal/auth exactly as it
// does in production (signature, issuer, audience, expiry), without the
// identity service.
//
//	iss := authtest.NewIssuer(t)
//	getenv := … iss.Env() …  // OIDC_ISSUER, OIDC_AUDIENCE
//	req.Header.Set("Authorization", "Bearer "+iss.Staff())
package authtest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/golang-jwt/jwt/v5"
	"github.com/sagittarius-a/sagittarius/internal/auth"
)

// Audience is the audience of the issuer's tokens (OIDC_AUDIENCE).
const Audience = "sagittarius"

// Issuer is a running test provider.
type Issuer struct {
	// URL is the issuer (OIDC_ISSUER): <server>/oauth.
	URL string
	key *rsa.PrivateKey
	t   testing.TB
}

// NewIssuer starts a provider, stopped when the test ends.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &Issuer{key: key, t: t}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"issuer": iss.URL, "jwks_uri": iss.URL + "/keys"})
	})
	mux.HandleFunc("GET /oauth/keys", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "test-1", Use: "sig", Algorithm: "RS256"}}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	iss.URL = srv.URL + "/oauth"
	return iss
}

// Env returns the verifier's environment for this issuer: OIDC_ISSUER and
// OIDC_AUDIENCE, as key, value pairs.
func (iss *Issuer) Env() []string {
	return []string{"OIDC_ISSUER", iss.URL, "OIDC_AUDIENCE", Audience}
}

// Claims are valid claims for subject with roles, valid for 10 minutes.
func (iss *Issuer) Claims(subject string, roles ...string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss": iss.URL, "aud": []string{Audience}, "sub": subject, "client_id": "authtest",
		"exp": now.Add(10 * time.Minute).Unix(), "iat": now.Add(-time.Second).Unix(), "nbf": now.Add(-time.Second).Unix(),
		"roles": roles,
	}
}

// Sign signs claims with the issuer's key.
func (iss *Issuer) Sign(claims jwt.MapClaims) string {
	iss.t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = "test-1"
	s, err := tok.SignedString(iss.key)
	if err != nil {
		iss.t.Fatal(err)
	}
	return s
}

// Staff returns a token of a staff member.
func (iss *Issuer) Staff() string { return iss.Sign(iss.Claims("staff-1", "staff")) }

// Operator returns a token of an operator.
func (iss *Issuer) Operator() string { return iss.Sign(iss.Claims("operator-1", "operator")) }

// Customer returns a token of the customer customerID (subject "account-"
// + customerID).
func (iss *Issuer) Customer(customerID string) string {
	c := iss.Claims("account-"+customerID, "customer")
	c["customer_id"] = customerID
	return iss.Sign(c)
}

// CustomerHeader is the request header Caller reads: the test's stand-in
// for a customer's token.
const CustomerHeader = "X-Test-Customer"

// Caller stands for the service kit's token verification in handler tests
// that call a router directly: each request acts as the customer its
// CustomerHeader names, or as staff without it (auth.FromContext).
func Caller(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := &auth.Principal{Subject: "staff-1", Roles: []auth.Role{auth.RoleStaff}, ExpiresAt: time.Now().Add(time.Hour)}
		if c := r.Header.Get(CustomerHeader); c != "" {
			p = &auth.Principal{Subject: "account-" + c, Roles: []auth.Role{auth.RoleCustomer}, CustomerID: c, ExpiresAt: time.Now().Add(time.Hour)}
		}
		next.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	})
}
