package idp_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/authclient"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
	"github.com/sagittarius-a/sagittarius/services/identity/account"
	"github.com/sagittarius-a/sagittarius/services/identity/httpapi"
	"github.com/sagittarius-a/sagittarius/services/identity/idp"
	"github.com/sagittarius-a/sagittarius/services/identity/mysql"
)

const (
	staffPassword = "staff password 1"
	demoSecret    = "demo-client-secret-0123456789"
	demoClient    = "sagittarius-demo"
)

// platform is a provider on httptest, on a fresh migrated database.
type platform struct {
	srv      *httptest.Server
	db       *sqlx.DB
	store    *mysql.Store
	provider *idp.Provider
	handler  atomic.Value // http.Handler
}

func (p *platform) issuer() string { return p.srv.URL + "/oauth" }

func newPlatform(t *testing.T) *platform {
	t.Helper()
	p := &platform{db: testinfra.NewDatabase(t)}
	if err := mysql.Migrate(context.Background(), p.db, nil); err != nil {
		t.Fatal(err)
	}
	var err error
	p.store, err = mysql.New(p.db, httpapi.NewRenderer(hal.MustBase("http://gw.test")).Account, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.handler.Load().(http.Handler).ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	err = idp.Provision(context.Background(), p.store, p.store, idp.Provisioning{
		StaffEmail: "staff@sagittarius.example", StaffPassword: staffPassword,
		DemoClientID: demoClient, DemoClientSecret: demoSecret,
	})
	if err != nil {
		t.Fatal(err)
	}
	p.start(t)
	return p
}

// start (re)creates the provider on the same database, as a restart does.
func (p *platform) start(t *testing.T) {
	t.Helper()
	prov, err := idp.New(context.Background(), idp.Config{PublicURL: p.srv.URL, Audience: "sagittarius"}, p.store, p.store)
	if err != nil {
		t.Fatal(err)
	}
	p.provider = prov
	p.handler.Store(prov.Handler())
}

func (p *platform) client() *authclient.Client { return &authclient.Client{Issuer: p.issuer()} }

func (p *platform) verifier(t *testing.T) *auth.Verifier {
	t.Helper()
	v, err := auth.New(auth.Config{Issuer: p.issuer(), Audience: "sagittarius", KeyRefreshCooldown: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// signUp creates a customer account directly in the store.
func (p *platform) signUp(t *testing.T, email, password string) account.Account {
	t.Helper()
	a, err := account.SignUp(newID(), newID(), email, "Ann", password, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.store.CreateAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	return a
}

func newID() string { return uuid.NewString() }

func getJSON(t *testing.T, u string, dst any) *http.Response {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(body, dst); err != nil {
		t.Fatalf("GET %s: %s %s", u, res.Status, body)
	}
	return res
}

func TestDiscoveryAndJWKS(t *testing.T) {
	p := newPlatform(t)
	var meta struct {
		Issuer, AuthorizationEndpoint, TokenEndpoint, JWKSURI string
		Grants                                                []string `json:"grant_types_supported"`
		PKCE                                                  []string `json:"code_challenge_methods_supported"`
		Algs                                                  []string `json:"id_token_signing_alg_values_supported"`
	}
	getJSON(t, p.issuer()+"/.well-known/openid-configuration", &meta)
	var m map[string]any
	getJSON(t, p.issuer()+"/.well-known/openid-configuration", &m)
	if m["issuer"] != p.issuer() || m["token_endpoint"] != p.issuer()+"/token" || m["jwks_uri"] != p.issuer()+"/keys" ||
		m["authorization_endpoint"] != p.issuer()+"/authorize" {
		t.Fatalf("discovery %v", m)
	}
	for _, g := range []string{"authorization_code", "refresh_token", "client_credentials"} {
		if !strings.Contains(strings.Join(meta.Grants, " "), g) {
			t.Fatalf("grant %s not supported: %v", g, meta.Grants)
		}
	}
	if strings.Join(meta.PKCE, " ") != "S256" {
		t.Fatalf("PKCE methods %v", meta.PKCE)
	}
	var jwks struct{ Keys []map[string]any }
	getJSON(t, p.issuer()+"/keys", &jwks)
	if len(jwks.Keys) != 1 || jwks.Keys[0]["kty"] != "RSA" || jwks.Keys[0]["alg"] != "RS256" || jwks.Keys[0]["use"] != "sig" || jwks.Keys[0]["kid"] == "" {
		t.Fatalf("jwks %v", jwks)
	}
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
		if _, ok := jwks.Keys[0][private]; ok {
			t.Fatalf("the JWKS publishes the private member %q", private)
		}
	}
}

func TestClientCredentials(t *testing.T) {
	p := newPlatform(t)
	ctx := context.Background()
	tok, err := p.client().ClientCredentials(ctx, demoClient, demoSecret)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "" || tok.TokenType != "Bearer" || tok.ExpiresIn < 800 || tok.ExpiresIn > 900 {
		t.Fatalf("token %+v", tok)
	}
	pr, err := p.verifier(t).Verify(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Subject != demoClient || pr.ClientID != demoClient || !pr.HasRole(auth.RoleStaff) || len(pr.Roles) != 1 || pr.CustomerID != "" {
		t.Fatalf("principal %+v", pr)
	}
	for _, bad := range []struct{ id, secret string }{{demoClient, demoSecret + "x"}, {"nobody", demoSecret}, {idp.CLIClientID, "anything-at-all-123"}} {
		_, err := p.client().ClientCredentials(ctx, bad.id, bad.secret)
		var oe *authclient.OAuthError
		if !errors.As(err, &oe) || oe.Status != 401 || oe.Code != "invalid_client" {
			t.Fatalf("client %s with a wrong secret: %v", bad.id, err)
		}
	}
	// A scope the client was not given is refused.
	_, err = p.client().ClientCredentials(ctx, demoClient, demoSecret, "payments:admin")
	var oe *authclient.OAuthError
	if !errors.As(err, &oe) || oe.Code != "invalid_scope" {
		t.Fatalf("unknown scope: %v", err)
	}
}

func TestAuthorizationCodeWithPKCEAndRefresh(t *testing.T) {
	p := newPlatform(t)
	ctx := context.Background()
	ann := p.signUp(t, "ann@example.com", "ann's long password")
	v := p.verifier(t)

	tok, err := p.client().SignIn(ctx, idp.CLIClientID, "Ann@Example.com", "ann's long password")
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || tok.IDToken == "" {
		t.Fatalf("token %+v", tok)
	}
	pr, err := v.Verify(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Subject != ann.ID || pr.CustomerID != ann.CustomerID || !pr.IsCustomer() || len(pr.Roles) != 1 || pr.ClientID != idp.CLIClientID ||
		!pr.HasScope("openid") || !pr.HasScope("offline_access") {
		t.Fatalf("principal %+v", pr)
	}

	// Refresh: new tokens; the used refresh token works once.
	next, err := p.client().Refresh(ctx, idp.CLIClientID, tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken || next.AccessToken == tok.AccessToken {
		t.Fatalf("refreshed %+v", next)
	}
	if pr2, err := v.Verify(ctx, next.AccessToken); err != nil || pr2.CustomerID != ann.CustomerID {
		t.Fatalf("refreshed access token: %+v %v", pr2, err)
	}
	_, err = p.client().Refresh(ctx, idp.CLIClientID, tok.RefreshToken)
	var oe *authclient.OAuthError
	if !errors.As(err, &oe) || oe.Code != "invalid_grant" {
		t.Fatalf("reused refresh token: %v", err)
	}
	// Only the SHA-256 of refresh tokens is stored.
	var n int
	if err := p.db.Get(&n, `SELECT COUNT(*) FROM oauth_refresh_tokens WHERE token_hash = ?`, []byte(next.RefreshToken)); err != nil || n != 0 {
		t.Fatalf("refresh token stored in clear (%d, %v)", n, err)
	}
	sum := sha256.Sum256([]byte(next.RefreshToken))
	if err := p.db.Get(&n, `SELECT COUNT(*) FROM oauth_refresh_tokens WHERE token_hash = ?`, sum[:]); err != nil || n != 1 {
		t.Fatalf("refresh token hash not stored (%d, %v)", n, err)
	}

	// Staff signs in the same way and gets role staff, no customer id.
	st, err := p.client().SignIn(ctx, idp.CLIClientID, "staff@sagittarius.example", staffPassword)
	if err != nil {
		t.Fatal(err)
	}
	if ps, err := v.Verify(ctx, st.AccessToken); err != nil || !ps.HasRole(auth.RoleStaff) || ps.CustomerID != "" || ps.IsCustomer() {
		t.Fatalf("staff principal %+v %v", ps, err)
	}
}

// authorize sends the browser's first request and returns the response.
func authorize(t *testing.T, p *platform, q url.Values) *http.Response {
	t.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := hc.Get(p.issuer() + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

func TestAuthorizationCodeRulesAndSignInPage(t *testing.T) {
	p := newPlatform(t)
	ctx := context.Background()
	p.signUp(t, "bob@example.com", "bob's long password")
	challenge := func(v string) string {
		s := sha256.Sum256([]byte(v))
		return base64.RawURLEncoding.EncodeToString(s[:])
	}
	q := url.Values{"client_id": {idp.CLIClientID}, "redirect_uri": {"http://127.0.0.1:4000/callback"}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"s1"}}

	// Without PKCE: an error sent back to the client, no sign-in page.
	res := authorize(t, p, q)
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || loc.Query().Get("error") != "invalid_request" || !strings.HasPrefix(loc.String(), "http://127.0.0.1:4000/callback") {
		t.Fatalf("without PKCE: %d %s", res.StatusCode, loc)
	}
	// A redirect URI that is not registered: refused, and not redirected to.
	bad := url.Values{}
	for k, v := range q {
		bad[k] = v
	}
	bad.Set("redirect_uri", "https://evil.example/callback")
	bad.Set("code_challenge", challenge("v"))
	bad.Set("code_challenge_method", "S256")
	if res := authorize(t, p, bad); strings.Contains(res.Header.Get("Location"), "evil.example") {
		t.Fatalf("redirected to an unregistered URI: %s", res.Header.Get("Location"))
	}

	// With PKCE: the sign-in page (HTML, not cacheable, not frameable).
	q.Set("code_challenge", challenge("verifier-verifier-verifier-verifier-verifier"))
	q.Set("code_challenge_method", "S256")
	res = authorize(t, p, q)
	loginURL := res.Header.Get("Location")
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(loginURL, p.srv.URL+"/login?authRequestID=") {
		t.Fatalf("authorize: %d %s", res.StatusCode, loginURL)
	}
	page, err := http.Get(loginURL)
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != 200 || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(html), `name="password"`) ||
		page.Header.Get("Cache-Control") != "no-store" || !strings.Contains(page.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("sign-in page: %d %v\n%s", page.StatusCode, page.Header, html)
	}
	if res, _ := http.Get(p.srv.URL + "/login?authRequestID=00000000-0000-0000-0000-000000000000"); res.StatusCode != 400 {
		t.Fatalf("sign-in page of an unknown request: %d", res.StatusCode)
	}

	// Wrong passwords: 401, then 429 after a burst; the right password is then refused too until the window passes.
	id := strings.TrimPrefix(loginURL, p.srv.URL+"/login?authRequestID=")
	post := func(email, pw string) *http.Response {
		hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := hc.PostForm(p.srv.URL+"/login", url.Values{"authRequestID": {id}, "email": {email}, "password": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Contains(string(body), pw) {
			t.Fatalf("the page echoes the password")
		}
		return res
	}
	if res := post("nobody@example.com", "whatever password"); res.StatusCode != 401 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("unknown e-mail: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	// A program that asks for JSON gets a problem document.
	req, _ := http.NewRequest("POST", p.srv.URL+"/login", strings.NewReader(url.Values{"authRequestID": {id}, "email": {"bob@example.com"}, "password": {"not bob's password"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/problem+json")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var prob struct {
		Status int
		Detail string
	}
	json.NewDecoder(res.Body).Decode(&prob)
	res.Body.Close()
	if res.StatusCode != 401 || res.Header.Get("Content-Type") != "application/problem+json" || prob.Status != 401 || prob.Detail != "Wrong e-mail or password." {
		t.Fatalf("problem answer: %d %s %+v", res.StatusCode, res.Header.Get("Content-Type"), prob)
	}
	for i := range 9 { // and the one above
		if res := post("bob@example.com", "wrong password"); res.StatusCode != 401 {
			t.Fatalf("wrong password %d: %d", i, res.StatusCode)
		}
	}
	if res := post("bob@example.com", "bob's long password"); res.StatusCode != 429 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("after a burst of wrong passwords: %d", res.StatusCode)
	}
	if _, err := p.client().SignIn(ctx, idp.CLIClientID, "bob@example.com", "bob's long password"); !errors.Is(err, authclient.ErrThrottled) {
		t.Fatalf("SignIn while throttled: %v", err)
	}
	// Another account is not affected.
	p.signUp(t, "cat@example.com", "cat's long password")
	if _, err := p.client().SignIn(ctx, idp.CLIClientID, "cat@example.com", "cat's long passworD"); !errors.Is(err, authclient.ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := p.client().SignIn(ctx, idp.CLIClientID, "cat@example.com", "cat's long password"); err != nil {
		t.Fatal(err)
	}
}

func TestCodeIsSingleUseAndBoundToTheVerifier(t *testing.T) {
	p := newPlatform(t)
	p.signUp(t, "dan@example.com", "dan's long password")
	verifier := "verifier-verifier-verifier-verifier-verifier"
	s := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {idp.CLIClientID}, "redirect_uri": {"http://127.0.0.1:4000/callback"}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"s1"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(s[:])}, "code_challenge_method": {"S256"}}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res := authorize(t, p, q)
	id := strings.TrimPrefix(res.Header.Get("Location"), p.srv.URL+"/login?authRequestID=")
	res, err := hc.PostForm(p.srv.URL+"/login", url.Values{"authRequestID": {id}, "email": {"dan@example.com"}, "password": {"dan's long password"}})
	if err != nil || res.StatusCode != 302 {
		t.Fatalf("sign in: %v %v", res, err)
	}
	res, err = hc.Get(res.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	loc, _ := url.Parse(res.Header.Get("Location"))
	code := loc.Query().Get("code")
	if code == "" || loc.Query().Get("state") != "s1" {
		t.Fatalf("callback redirect %s", loc)
	}
	exchange := func(v string) (int, string) {
		res, err := http.PostForm(p.issuer()+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {"http://127.0.0.1:4000/callback"}, "client_id": {idp.CLIClientID}, "code_verifier": {v}})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var e struct{ Error string }
		json.NewDecoder(res.Body).Decode(&e)
		return res.StatusCode, e.Error
	}
	if st, e := exchange("another-verifier-another-verifier-another"); st != 400 || e != "invalid_grant" {
		t.Fatalf("wrong verifier: %d %s", st, e)
	}
	if st, e := exchange(verifier); st != 200 {
		t.Fatalf("right verifier: %d %s", st, e)
	}
	if st, e := exchange(verifier); st != 400 || e != "invalid_grant" {
		t.Fatalf("code used twice: %d %s", st, e)
	}
}

func TestSigningKeyIsPersistedAndRotated(t *testing.T) {
	p := newPlatform(t)
	ctx := context.Background()
	kids := func() []string {
		var jwks struct{ Keys []struct{ Kid string } }
		getJSON(t, p.issuer()+"/keys", &jwks)
		var out []string
		for _, k := range jwks.Keys {
			out = append(out, k.Kid)
		}
		return out
	}
	before := kids()
	v := p.verifier(t)
	old, err := p.client().ClientCredentials(ctx, demoClient, demoSecret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, old.AccessToken); err != nil {
		t.Fatal(err)
	}

	// A restart (a new provider on the same database) keeps the key.
	p.start(t)
	if after := kids(); len(after) != 1 || after[0] != before[0] {
		t.Fatalf("keys after restart %v, before %v", after, before)
	}
	if tok, err := p.client().ClientCredentials(ctx, demoClient, demoSecret); err != nil {
		t.Fatal(err)
	} else if _, err := v.Verify(ctx, tok.AccessToken); err != nil {
		t.Fatalf("token after restart: %v", err)
	}

	// Rotation: a new signing key; the old one stays published for the tokens it signed.
	if err := p.provider.RotateKey(ctx); err != nil {
		t.Fatal(err)
	}
	rotated := kids()
	if len(rotated) != 2 || rotated[1] != before[0] && rotated[0] != before[0] {
		t.Fatalf("keys after rotation %v", rotated)
	}
	fresh, err := p.client().ClientCredentials(ctx, demoClient, demoSecret)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond) // the test verifier's cool-down
	if _, err := v.Verify(ctx, fresh.AccessToken); err != nil {
		t.Fatalf("token of the new key (verifier fetches the keys on the unknown kid): %v", err)
	}
	if _, err := v.Verify(ctx, old.AccessToken); err != nil {
		t.Fatalf("token of the retired key: %v", err)
	}
	// The retired key is also kept across a restart, and the new one signs.
	p.start(t)
	if got := kids(); len(got) != 2 {
		t.Fatalf("keys after rotation and restart %v", got)
	}
	var keys int
	if err := p.db.Get(&keys, `SELECT COUNT(*) FROM oauth_signing_keys WHERE retired_at IS NULL`); err != nil || keys != 1 {
		t.Fatalf("%d signing keys not retired (%v)", keys, err)
	}
}

// TestKeysRotateWhenDueAndInstancesConverge runs two providers on one
// database with a short rotation period: each rotation happens once (not
// once per instance), and both instances publish and sign with the same keys.
func TestKeysRotateWhenDueAndInstancesConverge(t *testing.T) {
	p := newPlatform(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := idp.Config{PublicURL: p.srv.URL, Audience: "sagittarius", KeyRotation: 3 * time.Second}
	var provs []*idp.Provider
	for range 2 {
		prov, err := idp.New(ctx, cfg, p.store, p.store)
		if err != nil {
			t.Fatal(err)
		}
		provs = append(provs, prov)
		go prov.Run(ctx, 100*time.Millisecond)
	}
	kids := func(prov *idp.Provider) string {
		srv := httptest.NewServer(prov.Handler())
		defer srv.Close()
		var jwks struct{ Keys []struct{ Kid string } }
		getJSON(t, srv.URL+"/oauth/keys", &jwks)
		var out []string
		for _, k := range jwks.Keys {
			out = append(out, k.Kid)
		}
		return strings.Join(out, ",")
	}
	first := kids(provs[0])
	if first != kids(provs[1]) {
		t.Fatalf("instances publish different keys: %s / %s", first, kids(provs[1]))
	}
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(kids(provs[0]), ",") < 1 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // both instances have refreshed since
	a, b := kids(provs[0]), kids(provs[1])
	if a != b || strings.Count(a, ",") != 1 || !strings.Contains(a, first) {
		t.Fatalf("after one rotation: %s / %s (first key %s)", a, b, first)
	}
	var signing, all int
	if err := p.db.Get(&signing, `SELECT COUNT(*) FROM oauth_signing_keys WHERE retired_at IS NULL`); err != nil {
		t.Fatal(err)
	}
	if err := p.db.Get(&all, `SELECT COUNT(*) FROM oauth_signing_keys`); err != nil {
		t.Fatal(err)
	}
	if signing != 1 || all != 2 {
		t.Fatalf("%d signing keys of %d after rotation by two instances", signing, all)
	}
}

func TestSigningKeysSealedAtRest(t *testing.T) {
	p := newPlatform(t) // its first key is in the clear
	ctx := context.Background()
	const secret = "a key-encryption secret of 32+ characters"
	cfg := idp.Config{PublicURL: p.srv.URL, Audience: "sagittarius", KeyEncryptionSecret: secret}
	prov, err := idp.New(ctx, cfg, p.store, p.store) // reads the clear key
	if err != nil {
		t.Fatal(err)
	}
	if err := prov.RotateKey(ctx); err != nil { // writes a sealed one
		t.Fatal(err)
	}
	var rows []struct {
		ID  string `db:"id"`
		DER []byte `db:"private_der"`
	}
	if err := p.db.Select(&rows, `SELECT id, private_der FROM oauth_signing_keys WHERE retired_at IS NULL`); err != nil || len(rows) != 1 {
		t.Fatalf("%v %v", rows, err)
	}
	if !strings.HasPrefix(string(rows[0].DER), "sealed-aes256gcm-v1:") {
		t.Fatalf("the new key is not sealed: % x", rows[0].DER[:8])
	}
	// A restart with the secret signs with the sealed key; without it, or with another, it refuses to start.
	p.handler.Store(mustNew(t, cfg, p).Handler())
	tok, err := p.client().ClientCredentials(ctx, demoClient, demoSecret)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(decodeHeader(t, tok.AccessToken), rows[0].ID) {
		t.Fatalf("token not signed with the sealed key %s: %s", rows[0].ID, decodeHeader(t, tok.AccessToken))
	}
	if _, err := p.verifier(t).Verify(ctx, tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	for _, other := range []string{"", "another secret that is long enough, 32+"} {
		c := cfg
		c.KeyEncryptionSecret = other
		if _, err := idp.New(ctx, c, p.store, p.store); err == nil {
			t.Fatalf("started with key-encryption secret %q", other)
		}
	}
	if _, err := idp.New(ctx, idp.Config{PublicURL: p.srv.URL, Audience: "a", KeyEncryptionSecret: "short"}, p.store, p.store); err == nil {
		t.Fatal("a short secret was accepted")
	}
}

func mustNew(t *testing.T, cfg idp.Config, p *platform) *idp.Provider {
	t.Helper()
	prov, err := idp.New(context.Background(), cfg, p.store, p.store)
	if err != nil {
		t.Fatal(err)
	}
	return prov
}

func decodeHeader(t *testing.T, jwt string) string {
	t.Helper()
	h, err := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func decode(res *http.Response, dst any) error { return json.NewDecoder(res.Body).Decode(dst) }
