package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultAlgorithms are the signature algorithms accepted when
// Config.Algorithms is empty: asymmetric only. "none" and the HMAC
// algorithms (HS256…) are never accepted, whatever the configuration says:
// a verifier holding only public keys must not treat one as a shared secret.
var DefaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// MaxClockSkew bounds Config.ClockSkew.
const MaxClockSkew = 2 * time.Minute

// Config configures a Verifier. Zero fields take the defaults shown.
type Config struct {
	// Issuer is the trusted issuer (OIDC_ISSUER), exactly as the tokens'
	// iss claim and the discovery document's issuer say it, e.g.
	// http://127.0.0.1:8080/identity/oauth. Required.
	Issuer string
	// Audience must be one of the tokens' aud values (OIDC_AUDIENCE), e.g.
	// sagittarius. Required.
	Audience string
	// Algorithms is the allow-list of signature algorithms (OIDC_ALGORITHMS,
	// comma-separated): default DefaultAlgorithms. Only names from
	// DefaultAlgorithms are allowed.
	Algorithms []string
	// ClockSkew is tolerated on exp, nbf and iat (OIDC_CLOCK_SKEW): default
	// 30s, at most MaxClockSkew.
	ClockSkew time.Duration
	// RolesClaim names the claim holding the roles (OIDC_ROLES_CLAIM):
	// default "roles". A name absent from the token is read as a dotted path
	// into nested objects, so Keycloak's realm roles are
	// "realm_access.roles"; a name with dots that is a top-level claim (an
	// Auth0 namespaced claim such as "https://shop.example/roles") is read
	// as is.
	RolesClaim string
	// CustomerIDClaim names the claim holding a customer's id
	// (OIDC_CUSTOMER_ID_CLAIM): default "customer_id"; dotted paths as for
	// RolesClaim.
	CustomerIDClaim string
	// KeyRefreshCooldown is the least time between two fetches of the keys
	// caused by unknown key ids (or between failed discovery attempts):
	// default 30s. A token naming an unknown key within the cool-down is
	// refused at once, without a fetch.
	KeyRefreshCooldown time.Duration
	// KeyRefreshInterval: keys older than this are fetched again in the
	// background on the next verification: default 1h.
	KeyRefreshInterval time.Duration
	// CacheSize bounds the verified-token cache (entries): default 10000;
	// negative disables the cache.
	CacheSize int
	// CacheTTL bounds how long a verified token is trusted without being
	// verified again, even if it expires later: default 5m.
	CacheTTL time.Duration
	// HTTPClient fetches discovery and keys: default a client with a 10s
	// timeout.
	HTTPClient *http.Client
	// Now is the clock: default time.Now. For tests.
	Now func() time.Time
}

// ConfigFromEnv reads the OIDC_* variables named in Config from getenv.
// Durations use time.ParseDuration syntax. It does not validate: New does.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Issuer:          getenv("OIDC_ISSUER"),
		Audience:        getenv("OIDC_AUDIENCE"),
		RolesClaim:      getenv("OIDC_ROLES_CLAIM"),
		CustomerIDClaim: getenv("OIDC_CUSTOMER_ID_CLAIM"),
	}
	if s := getenv("OIDC_ALGORITHMS"); s != "" {
		for a := range strings.SplitSeq(s, ",") {
			if a = strings.TrimSpace(a); a != "" {
				c.Algorithms = append(c.Algorithms, a)
			}
		}
	}
	if s := getenv("OIDC_CLOCK_SKEW"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return c, fmt.Errorf("OIDC_CLOCK_SKEW: %w", err)
		}
		c.ClockSkew = d
	}
	return c, nil
}

func (c *Config) withDefaults() error {
	var errs []error
	u, err := url.Parse(c.Issuer)
	switch {
	case c.Issuer == "":
		errs = append(errs, errors.New("OIDC_ISSUER is required"))
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, fmt.Errorf("OIDC_ISSUER %q: want an http(s) URL without query or fragment", c.Issuer))
	}
	if c.Audience == "" {
		errs = append(errs, errors.New("OIDC_AUDIENCE is required"))
	}
	if len(c.Algorithms) == 0 {
		c.Algorithms = DefaultAlgorithms
	}
	for _, a := range c.Algorithms {
		if !contains(DefaultAlgorithms, a) {
			errs = append(errs, fmt.Errorf("OIDC_ALGORITHMS: %q is not allowed (allowed: %s)", a, strings.Join(DefaultAlgorithms, ", ")))
		}
	}
	switch {
	case c.ClockSkew == 0:
		c.ClockSkew = 30 * time.Second
	case c.ClockSkew < 0 || c.ClockSkew > MaxClockSkew:
		errs = append(errs, fmt.Errorf("OIDC_CLOCK_SKEW %s: want 0 to %s", c.ClockSkew, MaxClockSkew))
	}
	if c.RolesClaim == "" {
		c.RolesClaim = "roles"
	}
	if c.CustomerIDClaim == "" {
		c.CustomerIDClaim = "customer_id"
	}
	if c.KeyRefreshCooldown <= 0 {
		c.KeyRefreshCooldown = 30 * time.Second
	}
	if c.KeyRefreshInterval <= 0 {
		c.KeyRefreshInterval = time.Hour
	}
	if c.CacheSize == 0 {
		c.CacheSize = 10000
	}
	if c.CacheTTL <= 0 {
		c.CacheTTL = 5 * time.Minute
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Verifier verifies access tokens of one issuer. It is safe for concurrent
// use. It does no network I/O until the first verification, so a service may
// start before its identity provider.
type Verifier struct {
	cfg    Config
	keys   *keySet
	cache  *tokenCache
	parser *jwt.Parser
}

// New returns a Verifier for cfg, or an error naming every invalid setting.
func New(cfg Config) (*Verifier, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	v := &Verifier{
		cfg:  cfg,
		keys: newKeySet(cfg),
		parser: jwt.NewParser(
			jwt.WithValidMethods(cfg.Algorithms),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithLeeway(cfg.ClockSkew),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithTimeFunc(cfg.Now),
		),
	}
	if cfg.CacheSize > 0 {
		v.cache = newTokenCache(cfg.CacheSize)
	}
	return v, nil
}

// Issuer returns the trusted issuer.
func (v *Verifier) Issuer() string { return v.cfg.Issuer }

// Audience returns the required audience.
func (v *Verifier) Audience() string { return v.cfg.Audience }

// TokenError is why a token was refused. Code is the RFC 6750 error code:
// "invalid_token" for a token that is malformed, expired, not yet valid,
// foreign (issuer, audience) or badly signed. Description is safe to show
// to the client.
type TokenError struct {
	Code        string
	Description string
	Err         error // the cause, for logs; may be nil
}

func (e *TokenError) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Description + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Description
}

func (e *TokenError) Unwrap() error { return e.Err }

// ErrUnavailable wraps a failure to reach the issuer (discovery or keys) when
// a token's key is not known yet: the token may be valid, the caller should
// answer 503 or retry later.
var ErrUnavailable = errors.New("auth: identity provider unavailable")

func invalid(desc string, err error) error {
	return &TokenError{Code: "invalid_token", Description: desc, Err: err}
}

// Verify checks raw (a compact JWS, without "Bearer ") and returns its
// Principal. It returns a *TokenError for a token that must be refused, or
// an error wrapping ErrUnavailable when the issuer's keys cannot be fetched
// and the token's key is not yet known. A token verified before is answered
// from the cache until it expires (or Config.CacheTTL passes).
func (v *Verifier) Verify(ctx context.Context, raw string) (*Principal, error) {
	if raw == "" || len(raw) > 16<<10 {
		return nil, invalid("the token is malformed", nil)
	}
	now := v.cfg.Now()
	var sum [32]byte
	if v.cache != nil {
		sum = sha256.Sum256([]byte(raw))
		if p, ok := v.cache.get(sum, now); ok {
			return p, nil
		}
	}
	var claims jwt.MapClaims
	tok, err := v.parser.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		return v.keys.key(ctx, kid, t.Method.Alg())
	})
	if err != nil {
		return nil, v.tokenError(err)
	}
	if !tok.Valid {
		return nil, invalid("the token is invalid", nil)
	}
	p, err := v.principal(claims)
	if err != nil {
		return nil, err
	}
	if v.cache != nil {
		until := now.Add(v.cfg.CacheTTL)
		if p.ExpiresAt.Before(until) {
			until = p.ExpiresAt
		}
		v.cache.put(sum, p, until, now)
	}
	return p, nil
}

func (v *Verifier) tokenError(err error) error {
	var te *TokenError
	switch {
	case errors.Is(err, ErrUnavailable):
		return err
	case errors.As(err, &te): // from the key lookup
		return te
	case errors.Is(err, jwt.ErrTokenExpired):
		return invalid("the token has expired", err)
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return invalid("the token is not valid yet", err)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return invalid("the token is from another issuer", err)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return invalid("the token is for another audience", err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return invalid("the token's signature cannot be verified", err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return invalid("the token lacks a required claim", err)
	default:
		return invalid("the token is malformed", err)
	}
}

// principal maps verified claims to a Principal.
func (v *Verifier) principal(c jwt.MapClaims) (*Principal, error) {
	sub, _ := c["sub"].(string)
	if sub == "" {
		return nil, invalid("the token has no subject", nil)
	}
	exp, err := c.GetExpirationTime()
	if err != nil || exp == nil {
		return nil, invalid("the token has no expiry", err)
	}
	p := &Principal{Subject: sub, ExpiresAt: exp.Time}
	for _, r := range stringList(claim(c, v.cfg.RolesClaim)) {
		if role := Role(r); role.Valid() && !p.HasRole(role) {
			p.Roles = append(p.Roles, role)
		}
	}
	// RFC 9068 "scope" (space-separated); some providers say "scp" (array).
	if s, ok := c["scope"].(string); ok {
		p.Scopes = strings.Fields(s)
	} else {
		p.Scopes = stringList(c["scp"])
	}
	p.ClientID, _ = c["client_id"].(string)
	if p.ClientID == "" {
		p.ClientID, _ = c["azp"].(string)
	}
	p.CustomerID, _ = claim(c, v.cfg.CustomerIDClaim).(string)
	p.TokenID, _ = c["jti"].(string)
	return p, nil
}

// claim returns claim name of c: the top-level member if there is one, else
// the value at the dotted path.
func claim(c map[string]any, name string) any {
	if v, ok := c[name]; ok {
		return v
	}
	var cur any = c
	for part := range strings.SplitSeq(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

// stringList reads a JSON array of strings, a space-separated string, or
// the member names of an object (Zitadel's role claim maps each role to the
// organisations granting it), sorted.
func stringList(v any) []string {
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case map[string]any:
		out := make([]string, 0, len(v))
		for k := range v {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
