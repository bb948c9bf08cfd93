package authclient

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// TokenSource returns a valid access token, obtaining a new one when the
// last is about to expire. It is safe for concurrent use.
type TokenSource func(ctx context.Context) (string, error)

// ClientCredentialsSource is a TokenSource of the machine client clientID:
// a token from the client-credentials grant, kept until a minute before it
// expires.
func (c *Client) ClientCredentialsSource(clientID, secret string, scopes ...string) TokenSource {
	var (
		mu    sync.Mutex
		tok   string
		until time.Time
	)
	return func(ctx context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if tok != "" && time.Now().Before(until) {
			return tok, nil
		}
		t, err := c.ClientCredentials(ctx, clientID, secret, scopes...)
		if err != nil {
			return "", err
		}
		tok, until = t.AccessToken, time.Now().Add(time.Duration(t.ExpiresIn)*time.Second-time.Minute)
		return tok, nil
	}
}

// Transport is an http.RoundTripper that sends a token of Source as
// "Authorization: Bearer" on every request that has no Authorization header
// (an empty one sends none). Next nil is http.DefaultTransport.
type Transport struct {
	Source TokenSource
	Next   http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	next := t.Next
	if next == nil {
		next = http.DefaultTransport
	}
	if _, set := r.Header["Authorization"]; set {
		if r.Header.Get("Authorization") == "" {
			r = r.Clone(r.Context())
			r.Header.Del("Authorization")
		}
		return next.RoundTrip(r)
	}
	tok, err := t.Source(r.Context())
	if err != nil {
		return nil, fmt.Errorf("authclient: access token: %w", err)
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	return next.RoundTrip(r)
}

// DemoClientID is the machine client scripts/up provisions (role staff).
const DemoClientID = "sagittarius-demo"

// DemoSource is the TokenSource of the demo client of a platform started by
// scripts/up: its secret is read from secretsDir/identity-demo-client.secret
// (SAGITTARIUS_SECRETS, default .data/secrets).
func DemoSource(issuer, secretsDir string) (TokenSource, error) {
	b, err := os.ReadFile(filepath.Join(secretsDir, "identity-demo-client.secret"))
	if err != nil {
		return nil, fmt.Errorf("authclient: the demo client's secret (written by scripts/up): %w", err)
	}
	secret := string(bytes.TrimSpace(b))
	c := &Client{Issuer: issuer}
	return c.ClientCredentialsSource(DemoClientID, secret), nil
}
