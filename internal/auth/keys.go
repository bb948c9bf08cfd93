package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// keySet holds the issuer's public keys by key id. Discovery and key fetches
// happen on demand: the first verification, a token naming an unknown key
// (at most once per cool-down, failing fast within it) and, in the
// background, keys older than the refresh interval.
type keySet struct {
	cfg Config

	mu          sync.RWMutex
	jwksURI     string
	keys        map[string]jose.JSONWebKey
	fetchedAt   time.Time // last successful fetch
	attemptedAt time.Time // last fetch attempt, successful or not
	lastErr     error
	background  bool // a background refresh is running

	fetch sync.Mutex // one fetch at a time; waiters reuse its result
}

func newKeySet(cfg Config) *keySet { return &keySet{cfg: cfg} }

// key returns the public key for kid usable with alg, fetching the keys when
// kid is unknown and the cool-down allows. kid "" matches the only key of the
// set, if there is exactly one.
func (ks *keySet) key(ctx context.Context, kid, alg string) (any, error) {
	now := ks.cfg.Now()
	ks.mu.RLock()
	k, found := ks.lookup(kid)
	stale := !ks.fetchedAt.IsZero() && now.Sub(ks.fetchedAt) > ks.cfg.KeyRefreshInterval &&
		now.Sub(ks.attemptedAt) > ks.cfg.KeyRefreshCooldown && !ks.background
	ks.mu.RUnlock()
	if found {
		if stale {
			ks.refreshInBackground()
		}
		return usable(k, alg)
	}
	if err := ks.refresh(ctx, now); err != nil {
		return nil, err
	}
	ks.mu.RLock()
	k, found = ks.lookup(kid)
	ks.mu.RUnlock()
	if !found {
		return nil, invalid("the token's signing key is unknown", fmt.Errorf("kid %q", kid))
	}
	return usable(k, alg)
}

// lookup must be called with mu held.
func (ks *keySet) lookup(kid string) (jose.JSONWebKey, bool) {
	if kid == "" {
		if len(ks.keys) == 1 {
			for _, k := range ks.keys {
				return k, true
			}
		}
		return jose.JSONWebKey{}, false
	}
	k, ok := ks.keys[kid]
	return k, ok
}

// usable returns k's public key when it may verify alg: a signing key
// (use absent or "sig"), of the algorithm's key type, and of alg when the
// key names one.
func usable(k jose.JSONWebKey, alg string) (any, error) {
	if k.Use != "" && k.Use != "sig" {
		return nil, invalid("the token's key is not a signing key", nil)
	}
	if k.Algorithm != "" && k.Algorithm != alg {
		return nil, invalid("the token's algorithm does not match its key", fmt.Errorf("key %s, token %s", k.Algorithm, alg))
	}
	pub := k.Public().Key
	ok := false
	switch pub.(type) {
	case *rsa.PublicKey:
		ok = strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		ok = strings.HasPrefix(alg, "ES")
	case ed25519.PublicKey:
		ok = alg == "EdDSA"
	}
	if !ok {
		return nil, invalid("the token's algorithm does not match its key", fmt.Errorf("key %T, token %s", pub, alg))
	}
	return pub, nil
}

// refresh fetches discovery (once) and the keys, unless the last attempt is
// within the cool-down: then it returns at once, with the last error if
// that attempt failed. Concurrent callers wait for one fetch.
func (ks *keySet) refresh(ctx context.Context, now time.Time) error {
	ks.fetch.Lock()
	defer ks.fetch.Unlock()
	ks.mu.RLock()
	attempted, lastErr := ks.attemptedAt, ks.lastErr
	ks.mu.RUnlock()
	if !attempted.IsZero() && now.Sub(attempted) < ks.cfg.KeyRefreshCooldown {
		return lastErr // nil: the keys were fetched within the cool-down; the caller looks again
	}
	// The fetch outlives a cancelled request: its result serves everyone
	// for the cool-down, so one client hanging up must not make it fail.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	err := ks.load(fctx)
	ks.mu.Lock()
	ks.attemptedAt = ks.cfg.Now()
	ks.lastErr = err
	ks.mu.Unlock()
	return err
}

func (ks *keySet) refreshInBackground() {
	ks.mu.Lock()
	if ks.background {
		ks.mu.Unlock()
		return
	}
	ks.background = true
	ks.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ks.fetch.Lock()
		defer ks.fetch.Unlock()
		err := ks.load(ctx)
		ks.mu.Lock()
		ks.background = false
		ks.attemptedAt = ks.cfg.Now() // under fetch: a waiting refresh sees this attempt
		ks.lastErr = err              // on failure the keys we have stay; next try after the cool-down
		ks.mu.Unlock()
	}()
}

// load fetches discovery when not done yet, then the JWKS, and replaces the
// keys. Must be called with fetch held.
func (ks *keySet) load(ctx context.Context) error {
	ks.mu.RLock()
	jwksURI := ks.jwksURI
	ks.mu.RUnlock()
	if jwksURI == "" {
		var meta struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		url := strings.TrimSuffix(ks.cfg.Issuer, "/") + "/.well-known/openid-configuration"
		if err := ks.getJSON(ctx, url, &meta); err != nil {
			return fmt.Errorf("%w: discovery: %w", ErrUnavailable, err)
		}
		if meta.Issuer != ks.cfg.Issuer {
			return fmt.Errorf("%w: discovery at %s names issuer %q, want %q", ErrUnavailable, url, meta.Issuer, ks.cfg.Issuer)
		}
		if !strings.HasPrefix(meta.JWKSURI, "https://") && !strings.HasPrefix(meta.JWKSURI, "http://") {
			return fmt.Errorf("%w: discovery at %s has no usable jwks_uri", ErrUnavailable, url)
		}
		jwksURI = meta.JWKSURI
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := ks.getJSON(ctx, jwksURI, &set); err != nil {
		return fmt.Errorf("%w: keys: %w", ErrUnavailable, err)
	}
	keys := make(map[string]jose.JSONWebKey, len(set.Keys))
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if k.UnmarshalJSON(raw) != nil {
			continue // a key type go-jose does not know (e.g. an encryption key): not ours to use
		}
		switch k.Key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
			keys[k.KeyID] = k
		case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
			keys[k.KeyID] = k.Public() // a JWKS should not publish private keys; use only the public half
		}
		// Symmetric ("oct") and unknown keys are ignored: never an HMAC secret.
	}
	ks.mu.Lock()
	ks.jwksURI = jwksURI
	ks.keys = keys
	ks.fetchedAt = ks.cfg.Now()
	ks.mu.Unlock()
	return nil
}

func (ks *keySet) getJSON(ctx context.Context, url string, dst any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	res, err := ks.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, res.Status)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}
