package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// testIssuer is an OpenID provider on httptest: discovery and a JWKS whose
// keys a test may change, counting JWKS fetches.
type testIssuer struct {
	srv     *httptest.Server
	issuer  string
	mu      sync.Mutex
	keys    map[string]crypto.Signer // kid -> private key
	fetches atomic.Int32
}

func newTestIssuer(t testing.TB) *testIssuer {
	t.Helper()
	ti := &testIssuer{keys: map[string]crypto.Signer{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": ti.issuer, "jwks_uri": ti.issuer + "/keys"})
	})
	mux.HandleFunc("GET /oauth/keys", func(w http.ResponseWriter, r *http.Request) {
		ti.fetches.Add(1)
		ti.mu.Lock()
		defer ti.mu.Unlock()
		var set jose.JSONWebKeySet
		for kid, k := range ti.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: kid, Use: "sig"})
		}
		json.NewEncoder(w).Encode(set)
	})
	ti.srv = httptest.NewServer(mux)
	t.Cleanup(ti.srv.Close)
	ti.issuer = ti.srv.URL + "/oauth"
	return ti
}

func (ti *testIssuer) addKey(t testing.TB, kid string, k crypto.Signer) {
	t.Helper()
	ti.mu.Lock()
	defer ti.mu.Unlock()
	ti.keys[kid] = k
}

func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sign returns a JWT of claims signed with key under kid.
func sign(t testing.TB, m jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claims are valid claims for ti's audience "sagittarius", for a customer.
func (ti *testIssuer) claims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": ti.issuer, "aud": []string{"sagittarius", "cli"}, "sub": "acct-1",
		"exp": now.Add(10 * time.Minute).Unix(), "iat": now.Add(-time.Second).Unix(), "nbf": now.Add(-time.Second).Unix(),
		"jti": "tok-1", "client_id": "cli", "scope": "openid orders:read",
		"roles": []string{"customer", "wizard"}, "customer_id": "cust-1",
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{t: time.Now()} }
func (ti *testIssuer) config(c *clock) Config {
	return Config{Issuer: ti.issuer, Audience: "sagittarius", Now: c.now, KeyRefreshCooldown: time.Minute}
}

func mustNew(t *testing.T, cfg Config) *Verifier {
	t.Helper()
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerifyAcceptsValidTokensOfEveryAllowedKeyType(t *testing.T) {
	ti := newTestIssuer(t)
	rk := rsaKey(t)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edk, _ := ed25519.GenerateKey(rand.Reader)
	ti.addKey(t, "rsa", rk)
	ti.addKey(t, "ec", ek)
	ti.addKey(t, "ed", edk)
	c := newClock()
	v := mustNew(t, ti.config(c))
	for _, tc := range []struct {
		m   jwt.SigningMethod
		kid string
		key any
	}{{jwt.SigningMethodRS256, "rsa", rk}, {jwt.SigningMethodPS256, "rsa", rk}, {jwt.SigningMethodES256, "ec", ek}, {jwt.SigningMethodEdDSA, "ed", edk}} {
		t.Run(tc.m.Alg(), func(t *testing.T) {
			p, err := v.Verify(context.Background(), sign(t, tc.m, tc.kid, tc.key, ti.claims(c.now())))
			if err != nil {
				t.Fatal(err)
			}
			if p.Subject != "acct-1" || !p.HasRole(RoleCustomer) || len(p.Roles) != 1 || !p.HasScope("orders:read") ||
				p.ClientID != "cli" || p.CustomerID != "cust-1" || p.TokenID != "tok-1" || !p.IsCustomer() {
				t.Fatalf("principal %+v", p)
			}
		})
	}
	if n := ti.fetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches, want 1", n)
	}
}

func TestVerifyRefusesBadTokens(t *testing.T) {
	ti := newTestIssuer(t)
	good := rsaKey(t)
	ti.addKey(t, "k1", good)
	other := rsaKey(t)
	c := newClock()
	now := c.now()
	v := mustNew(t, ti.config(c))
	with := func(mut func(jwt.MapClaims)) jwt.MapClaims {
		cl := ti.claims(now)
		mut(cl)
		return cl
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&good.PublicKey)

	valid := sign(t, jwt.SigningMethodRS256, "k1", good, ti.claims(now))
	parts := strings.Split(valid, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tamperedPayload := strings.Replace(string(payload), `"sub":"acct-1"`, `"sub":"acct-2"`, 1)
	if tamperedPayload == string(payload) {
		t.Fatal("tampering did not change the payload")
	}
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(tamperedPayload)) + "." + parts[2]

	none := sign(t, jwt.SigningMethodNone, "k1", jwt.UnsafeAllowNoneSignatureType, ti.claims(now))

	tests := []struct {
		name, token, want string
	}{
		{"signed by another key", sign(t, jwt.SigningMethodRS256, "k1", other, ti.claims(now)), "signature"},
		{"alg none", none, "signature"},
		{"HS256 with the public key as secret", sign(t, jwt.SigningMethodHS256, "k1", pubDER, ti.claims(now)), "signature"},
		{"tampered payload", tampered, "signature"},
		{"expired", sign(t, jwt.SigningMethodRS256, "k1", good, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })), "expired"},
		{"no expiry", sign(t, jwt.SigningMethodRS256, "k1", good, with(func(c jwt.MapClaims) { delete(c, "exp") })), "required claim"},
		{"not yet valid", sign(t, jwt.SigningMethodRS256, "k1", good, with(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() })), "not valid yet"},
		{"issued in the future", sign(t, jwt.SigningMethodRS256, "k1", good, with(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Minute).Unix() })), "not valid yet"},
		{"other audience", sign(t, jwt.SigningMethodRS256, "k1", good, with(func(c jwt.MapClaims) { c["aud"] = "billing" })), "another audience"},
		{"other issuer", sign(t, jwt.SigningMethodRS256, "k1", good, with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })), "another issuer"},
		{"no subject", sign(t, jwt.SigningMethodRS256, "k1", good, with(func(c jwt.MapClaims) { delete(c, "sub") })), "no subject"},
		{"unknown kid", sign(t, jwt.SigningMethodRS256, "k9", other, ti.claims(now)), "unknown"},
		{"garbage", "not.a.jwt", "malformed"},
		{"empty", "", "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), tt.token)
			var te *TokenError
			if !errors.As(err, &te) || te.Code != "invalid_token" {
				t.Fatalf("Verify = %+v, %v; want invalid_token", p, err)
			}
			if !strings.Contains(te.Description, tt.want) {
				t.Fatalf("description %q, want it to mention %q (%v)", te.Description, tt.want, err)
			}
		})
	}
	// The valid token still passes: the refusals above are not a broken verifier.
	if _, err := v.Verify(context.Background(), valid); err != nil {
		t.Fatal(err)
	}
}

func TestClockSkewIsBounded(t *testing.T) {
	ti := newTestIssuer(t)
	k := rsaKey(t)
	ti.addKey(t, "k1", k)
	c := newClock()
	v := mustNew(t, ti.config(c)) // default skew 30s
	cl := ti.claims(c.now())
	cl["exp"] = c.now().Add(-10 * time.Second).Unix()
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, "k1", k, cl)); err != nil {
		t.Fatalf("expired 10s ago, within skew: %v", err)
	}
	cl["exp"] = c.now().Add(-45 * time.Second).Unix()
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, "k1", k, cl)); err == nil {
		t.Fatal("expired 45s ago accepted with 30s skew")
	}
	if _, err := New(Config{Issuer: ti.issuer, Audience: "a", ClockSkew: time.Hour}); err == nil {
		t.Fatal("a skew of one hour was accepted")
	}
}

func TestUnknownKidRefreshesKeysWithCooldown(t *testing.T) {
	ti := newTestIssuer(t)
	k1, k2, k3 := rsaKey(t), rsaKey(t), rsaKey(t)
	ti.addKey(t, "k1", k1)
	c := newClock()
	v := mustNew(t, ti.config(c)) // cool-down 1 min
	ctx := context.Background()
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, "k1", k1, ti.claims(c.now()))); err != nil {
		t.Fatal(err)
	}
	if n := ti.fetches.Load(); n != 1 {
		t.Fatalf("fetches %d", n)
	}
	// The issuer rotates to k2 after the cool-down: a k2 token makes the verifier fetch again.
	ti.addKey(t, "k2", k2)
	c.add(2 * time.Minute)
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, "k2", k2, ti.claims(c.now()))); err != nil {
		t.Fatalf("token of the rotated key: %v", err)
	}
	if n := ti.fetches.Load(); n != 2 {
		t.Fatalf("fetches %d, want 2", n)
	}
	// Within the cool-down, unknown kids are refused without a fetch, however many.
	ti.addKey(t, "k3", k3)
	for i := range 20 {
		cl := ti.claims(c.now())
		cl["jti"] = i
		if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, "k3", k3, cl)); err == nil {
			t.Fatal("k3 accepted within the cool-down, so the keys were fetched")
		}
	}
	if n := ti.fetches.Load(); n != 2 {
		t.Fatalf("fetches %d within the cool-down, want 2", n)
	}
	c.add(61 * time.Second)
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, "k3", k3, ti.claims(c.now()))); err != nil {
		t.Fatalf("k3 after the cool-down: %v", err)
	}
	if n := ti.fetches.Load(); n != 3 {
		t.Fatalf("fetches %d, want 3", n)
	}
	// A removed key is gone after the next fetch (here: the periodic refresh).
	ti.mu.Lock()
	delete(ti.keys, "k1")
	ti.mu.Unlock()
	c.add(2 * time.Hour)
	v.cache = nil // look at the keys, not the cache
	tok1 := sign(t, jwt.SigningMethodRS256, "k1", k1, ti.claims(c.now()))
	_, _ = v.Verify(ctx, sign(t, jwt.SigningMethodRS256, "k2", k2, ti.claims(c.now()))) // starts the background refresh
	deadline := time.Now().Add(5 * time.Second)
	for ti.fetches.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := v.Verify(ctx, tok1); err == nil {
		t.Fatal("token of a removed key accepted after the refresh")
	}
}

func TestVerifiedTokensAreCachedUntilExpiry(t *testing.T) {
	ti := newTestIssuer(t)
	k := rsaKey(t)
	ti.addKey(t, "k1", k)
	c := newClock()
	cfg := ti.config(c)
	cfg.CacheSize = 3
	v := mustNew(t, cfg)
	ctx := context.Background()
	cl := ti.claims(c.now())
	cl["exp"] = c.now().Add(2 * time.Minute).Unix()
	tok := sign(t, jwt.SigningMethodRS256, "k1", k, cl)
	p1, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := v.Verify(ctx, tok)
	if err != nil || p2 != p1 {
		t.Fatalf("second Verify = %p, %v; want the cached %p", p2, err, p1)
	}
	// Past exp + skew the cached entry is not used and the token is refused.
	c.add(3 * time.Minute)
	if _, err := v.Verify(ctx, tok); err == nil {
		t.Fatal("expired token accepted from the cache")
	}
	// Bounded: never more than CacheSize entries.
	for i := range 10 {
		cl := ti.claims(c.now())
		cl["jti"] = i
		if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, "k1", k, cl)); err != nil {
			t.Fatal(err)
		}
		if n := v.cache.len(); n > 3 {
			t.Fatalf("cache holds %d entries, bound 3", n)
		}
	}
	// A refused token never enters the cache: tampering with a cached one is still refused.
	tok = sign(t, jwt.SigningMethodRS256, "k1", k, ti.claims(c.now()))
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, tok[:len(tok)-2]+"AA"); err == nil {
		t.Fatal("token with a changed signature accepted")
	}
}

func TestDiscoveryMustNameTheIssuer(t *testing.T) {
	ti := newTestIssuer(t)
	k := rsaKey(t)
	ti.addKey(t, "k1", k)
	c := newClock()
	cfg := ti.config(c)
	cfg.Issuer = ti.issuer + "/" // differs from what discovery says
	v := mustNew(t, cfg)
	cl := ti.claims(c.now())
	cl["iss"] = cfg.Issuer
	_, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, "k1", k, cl))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "names issuer") {
		t.Fatalf("Verify: %v, want ErrUnavailable naming the issuer mismatch", err)
	}
}

func TestIssuerDownIsUnavailableNotInvalid(t *testing.T) {
	ti := newTestIssuer(t)
	k := rsaKey(t)
	ti.addKey(t, "k1", k)
	c := newClock()
	v := mustNew(t, ti.config(c))
	ti.srv.Close()
	_, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, "k1", k, ti.claims(c.now())))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Verify with the issuer down: %v", err)
	}
}

func TestConfig(t *testing.T) {
	env := map[string]string{"OIDC_ISSUER": "http://127.0.0.1:8080/identity/oauth", "OIDC_AUDIENCE": "sagittarius",
		"OIDC_ALGORITHMS": "RS256, ES256", "OIDC_CLOCK_SKEW": "10s", "OIDC_ROLES_CLAIM": "realm_access.roles"}
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if v.cfg.ClockSkew != 10*time.Second || len(v.cfg.Algorithms) != 2 || v.cfg.RolesClaim != "realm_access.roles" {
		t.Fatalf("config %+v", v.cfg)
	}
	for _, bad := range []Config{
		{},
		{Issuer: "ftp://x", Audience: "a"},
		{Issuer: "https://x", Audience: "a", Algorithms: []string{"HS256"}},
		{Issuer: "https://x", Audience: "a", Algorithms: []string{"none"}},
		{Issuer: "https://x"},
	} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) accepted", bad)
		}
	}
}

func TestRolesFromNestedAndNamespacedClaims(t *testing.T) {
	ti := newTestIssuer(t)
	k := rsaKey(t)
	ti.addKey(t, "k1", k)
	c := newClock()
	for _, tc := range []struct {
		claim string
		set   func(jwt.MapClaims)
	}{
		{"realm_access.roles", func(m jwt.MapClaims) {
			m["realm_access"] = map[string]any{"roles": []string{"staff", "offline_access"}}
		}},
		{"https://shop.example/roles", func(m jwt.MapClaims) { m["https://shop.example/roles"] = []string{"staff"} }},
		{"urn:zitadel:iam:org:project:roles", func(m jwt.MapClaims) {
			m["urn:zitadel:iam:org:project:roles"] = map[string]any{"staff": map[string]any{"123": "shop.example"}}
		}},
	} {
		cfg := ti.config(c)
		cfg.RolesClaim = tc.claim
		v := mustNew(t, cfg)
		cl := ti.claims(c.now())
		delete(cl, "roles")
		delete(cl, "scope")
		cl["scp"] = []string{"orders:write"}
		tc.set(cl)
		p, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, "k1", k, cl))
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Roles) != 1 || !p.HasRole(RoleStaff) || !p.HasScope("orders:write") {
			t.Fatalf("%s: principal %+v", tc.claim, p)
		}
	}
}
