// Package authclient obtains access tokens from an OpenID provider the way
// a real client does, through the provider's endpoints found by discovery:
//
//   - ClientCredentials: a machine client with its secret (RFC 6749 4.4);
//   - SignIn: a person, through the authorization-code grant with PKCE
//     (RFC 7636, S256), driving the embedded provider's sign-in form
//     (GET /authorize, the form at /login, the callback) with net/http,
//     as a native app would with a browser and a loopback redirect;
//   - Refresh: the refresh-token grant.
//
// SignIn knows the form of Sagittarius' embedded provider (fields
// authRequestID, email, password); the other calls work with any standard
// provider. scripts/token (cmd/token) uses this package; so can tests,
// demos and benchmarks that need real tokens.
package authclient

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Errors of SignIn.
var (
	// ErrBadCredentials: the provider refused the e-mail and password (401).
	ErrBadCredentials = errors.New("authclient: wrong e-mail or password")
	// ErrThrottled: too many wrong passwords for this e-mail (429).
	ErrThrottled = errors.New("authclient: too many wrong passwords; wait and retry")
)

// LoopbackRedirect is the redirect URI SignIn uses by default: a loopback
// address, registered for the CLI client, that nothing needs to listen on
// because SignIn reads the code from the redirect itself.
const LoopbackRedirect = "http://127.0.0.1:53682/callback"

// Client talks to one provider. The zero HTTP means a client with a 30s
// timeout. A Client is safe for concurrent use.
type Client struct {
	Issuer string
	HTTP   *http.Client
}

// Metadata is the part of the discovery document this package uses.
type Metadata struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
}

// Token is a token endpoint's answer.
type Token struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// OAuthError is an error answer of the token or authorization endpoint
// (RFC 6749 5.2).
type OAuthError struct {
	Status      int    // HTTP status; 0 for an error sent to the redirect URI
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *OAuthError) Error() string {
	return fmt.Sprintf("authclient: %s (%d): %s", e.Code, e.Status, e.Description)
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// Discover fetches and checks the provider's discovery document.
func (c *Client) Discover(ctx context.Context) (Metadata, error) {
	var m Metadata
	u := strings.TrimSuffix(c.Issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return m, err
	}
	res, err := c.http().Do(req)
	if err != nil {
		return m, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return m, fmt.Errorf("authclient: GET %s: %s", u, res.Status)
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&m); err != nil {
		return m, fmt.Errorf("authclient: discovery: %w", err)
	}
	if m.Issuer != c.Issuer || m.TokenEndpoint == "" {
		return m, fmt.Errorf("authclient: discovery at %s names issuer %q and token endpoint %q", u, m.Issuer, m.TokenEndpoint)
	}
	return m, nil
}

// token posts form to the token endpoint, with HTTP Basic client
// authentication when secret is not "".
func (c *Client) token(ctx context.Context, form url.Values, clientID, secret string) (Token, error) {
	m, err := c.Discover(ctx)
	if err != nil {
		return Token{}, err
	}
	if secret == "" {
		form.Set("client_id", clientID) // a public client identifies itself in the form
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return Token{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if secret != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	res, err := c.http().Do(req)
	if err != nil {
		return Token{}, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return Token{}, err
	}
	if res.StatusCode != http.StatusOK {
		e := &OAuthError{Status: res.StatusCode}
		if json.Unmarshal(body, e) != nil || e.Code == "" {
			e.Code, e.Description = "http_error", strings.TrimSpace(string(body))
		}
		return Token{}, e
	}
	var t Token
	if err := json.Unmarshal(body, &t); err != nil || t.AccessToken == "" {
		return Token{}, fmt.Errorf("authclient: token endpoint answered %s without an access token (%v)", res.Status, err)
	}
	return t, nil
}

// ClientCredentials obtains a token for the machine client clientID.
func (c *Client) ClientCredentials(ctx context.Context, clientID, secret string, scopes ...string) (Token, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	return c.token(ctx, form, clientID, secret)
}

// Refresh exchanges a refresh token of the public client clientID for new
// tokens (the old refresh token stops working).
func (c *Client) Refresh(ctx context.Context, clientID, refreshToken string) (Token, error) {
	return c.token(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}, clientID, "")
}

// SignIn signs email in with password for the public client clientID
// through the authorization-code grant with PKCE, and returns its tokens
// (with a refresh token: it asks for offline_access). scopes are added to
// "openid offline_access".
func (c *Client) SignIn(ctx context.Context, clientID, email, password string, scopes ...string) (Token, error) {
	m, err := c.Discover(ctx)
	if err != nil {
		return Token{}, err
	}
	verifier, state := random(), random()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"client_id": {clientID}, "redirect_uri": {LoopbackRedirect}, "response_type": {"code"},
		"scope": {strings.Join(append([]string{"openid", "offline_access"}, scopes...), " ")}, "state": {state},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	hc := *c.http()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	// 1. The authorization endpoint sends the browser to the sign-in page.
	loginURL, err := redirect(ctx, &hc, http.MethodGet, m.AuthorizationEndpoint+"?"+q.Encode(), nil)
	if err != nil {
		return Token{}, fmt.Errorf("authclient: authorize: %w", err)
	}
	lu, err := url.Parse(loginURL)
	if err != nil {
		return Token{}, err
	}
	if e := redirectError(lu); e != nil {
		return Token{}, e
	}
	id := lu.Query().Get("authRequestID")
	if id == "" {
		return Token{}, fmt.Errorf("authclient: authorize redirected to %s, not to a sign-in page", loginURL)
	}
	// 2. The person fills in the form.
	form := url.Values{"authRequestID": {id}, "email": {email}, "password": {password}}
	action := *lu
	action.RawQuery = ""
	callback, err := redirect(ctx, &hc, http.MethodPost, action.String(), form)
	if err != nil {
		return Token{}, err
	}
	// 3. The provider's callback redirects to the client with the code.
	final, err := redirect(ctx, &hc, http.MethodGet, callback, nil)
	if err != nil {
		return Token{}, fmt.Errorf("authclient: callback: %w", err)
	}
	fu, err := url.Parse(final)
	if err != nil {
		return Token{}, err
	}
	if e := redirectError(fu); e != nil {
		return Token{}, e
	}
	if fu.Query().Get("state") != state || fu.Query().Get("code") == "" {
		return Token{}, fmt.Errorf("authclient: the redirect carries no code or another state: %s", fu.Redacted())
	}
	return c.token(ctx, url.Values{
		"grant_type": {"authorization_code"}, "code": {fu.Query().Get("code")},
		"redirect_uri": {LoopbackRedirect}, "code_verifier": {verifier},
	}, clientID, "")
}

// redirect sends one request and returns its Location, which it must have
// (a 3xx). The sign-in page's refusals map to ErrBadCredentials and
// ErrThrottled.
func redirect(ctx context.Context, hc *http.Client, method, target string, form url.Values) (string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
	switch {
	case res.StatusCode == http.StatusUnauthorized:
		return "", ErrBadCredentials
	case res.StatusCode == http.StatusTooManyRequests:
		return "", ErrThrottled
	case res.StatusCode < 300 || res.StatusCode > 399 || res.Header.Get("Location") == "":
		return "", fmt.Errorf("authclient: %s %s: %s, want a redirect", method, req.URL.Redacted(), res.Status)
	}
	loc, err := req.URL.Parse(res.Header.Get("Location"))
	if err != nil {
		return "", err
	}
	return loc.String(), nil
}

// redirectError returns the OAuth error a redirect carries, or nil.
func redirectError(u *url.URL) error {
	if code := u.Query().Get("error"); code != "" {
		return &OAuthError{Code: code, Description: u.Query().Get("error_description")}
	}
	return nil
}

// random returns 32 random bytes, base64url: a PKCE verifier or a state.
func random() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
