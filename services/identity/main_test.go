package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/authclient"
	"github.com/sagittarius-a/sagittarius/internal/testinfra"
	"github.com/sagittarius-a/sagittarius/services/identity/idp"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestConfig(t *testing.T) {
	c := configFrom(env("AMQP_URL", "amqp://h", "MYSQL_DSN", "x"))
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:8087" || c.PublicURL != "http://127.0.0.1:8080/identity" || c.Audience != "sagittarius" ||
		c.StaffEmail != "staff@sagittarius.example" || c.DemoClientID != "sagittarius-demo" {
		t.Fatalf("defaults %+v", c)
	}
	for _, tc := range []struct {
		getenv func(string) string
		want   []string
	}{
		{env(), []string{"AMQP_URL", "MYSQL_DSN"}},
		{env("AMQP_URL", "a", "MYSQL_DSN", "x", "IDENTITY_PUBLIC_URL", "identity"), []string{"IDENTITY_PUBLIC_URL"}},
		{env("AMQP_URL", "a", "MYSQL_DSN", "x", "IDENTITY_KEY_ROTATION", "soon"), []string{"IDENTITY_KEY_ROTATION"}},
		{env("AMQP_URL", "a", "MYSQL_DSN", "x", "QUEUE_TYPE", "stream"), []string{"QUEUE_TYPE"}},
	} {
		err := configFrom(tc.getenv).Validate()
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("error %v does not name %s", err, w)
			}
		}
	}
}

// listenAddr waits for run's "listening" log line.
func listenAddr(t *testing.T, out *testinfra.SyncBuffer, errc <-chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(out.String()))
		for sc.Scan() {
			var l struct{ Msg string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "listening" {
				return
			}
		}
		select {
		case err := <-errc:
			t.Fatalf("run stopped: %v\n%s", err, out)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("run did not listen:\n%s", out)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func do(t *testing.T, method, url, token, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

// TestRunSignUpSignInAndTheAPI starts the whole service on a fresh database
// and vhost (production permissions), with provisioning from secret files:
// a customer signs up over the API (account_registered, without a secret,
// reaches sagittarius-a), signs in through the provider, and the API
// enforces who may read what with the provider's own tokens.
func TestRunSignUpSignInAndTheAPI(t *testing.T) {
	adminURL, vhost := testinfra.NewVhost(t)
	testinfra.DeclareExchange(t, vhost)
	serviceURL := testinfra.NewServiceUser(t, vhost, "iam.accounts")
	dsn := testinfra.NewDatabaseDSN(t)
	deliveries := listen(t, adminURL)

	dir := t.TempDir()
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	addr := freeAddr(t)
	base := "http://" + addr
	getenv := env("HTTP_ADDR", addr, "AMQP_URL", serviceURL, "MYSQL_DSN", dsn, "PUBLIC_BASE_URL", "http://gw.test:8080",
		"IDENTITY_PUBLIC_URL", base,
		"IDENTITY_STAFF_PASSWORD_FILE", write("staff.password", "staff password 1"),
		"IDENTITY_OPERATOR_PASSWORD_FILE", write("operator.password", "operator password 1"),
		"IDENTITY_DEMO_CLIENT_SECRET_FILE", write("demo.secret", "demo-secret-0123456789"),
		"IDENTITY_KEY_ENCRYPTION_SECRET_FILE", write("kek.secret", "a key-encryption secret of 32+ characters"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &testinfra.SyncBuffer{}
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, getenv, out) }()
	listenAddr(t, out, errc)

	// Sign up: bad input is 422 problem+json, a good one 201.
	res, body := do(t, "POST", base+"/v1/accounts", "", `{"email":"ann@example.com","name":"Ann","password":"short"}`)
	if res.StatusCode != 422 || res.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(body), "/password") {
		t.Fatalf("short password: %d %s", res.StatusCode, body)
	}
	res, body = do(t, "POST", base+"/v1/accounts", "", `{"email":"ann@example.com","name":"Ann","password":"ann's long password"}`)
	if res.StatusCode != 201 || !strings.HasPrefix(res.Header.Get("Location"), "http://gw.test:8080/identity/v1/accounts/") {
		t.Fatalf("sign up: %d %s", res.StatusCode, body)
	}
	var ann struct {
		ID, Role   string
		CustomerID string `json:"customer_id"`
	}
	json.Unmarshal(body, &ann)
	if ann.Role != "customer" || ann.CustomerID == "" || strings.Contains(string(body), "argon2") || strings.Contains(string(body), "password") {
		t.Fatalf("account %s", body)
	}
	if res, body := do(t, "POST", base+"/v1/accounts", "", `{"email":"ANN@example.com","name":"Ann 2","password":"another long password"}`); res.StatusCode != 409 {
		t.Fatalf("same email: %d %s", res.StatusCode, body)
	}

	// account_registered reaches the exchange for each account (the
	// provisioned staff and operator, and ann, in no promised order: the
	// relay's fast path may publish ann's before the provisioned ones),
	// never with a secret.
	seen := map[string]bool{}
	for !seen[ann.CustomerID] || !seen["staff"] || !seen["operator"] {
		select {
		case d := <-deliveries:
			if d.Type != "iam.accounts.account_registered" || d.AppId != "iam.accounts" {
				t.Fatalf("message %q from %q", d.Type, d.AppId)
			}
			for _, secret := range []string{"password", "argon2", "ann's long password", "staff password 1"} {
				if strings.Contains(string(d.Body), secret) {
					t.Fatalf("account_registered carries %q: %s", secret, d.Body)
				}
			}
			var p struct {
				Account struct {
					Role       string
					CustomerID string `json:"customer_id"`
				}
			}
			json.Unmarshal(d.Body, &p)
			seen[p.Account.Role] = true
			seen[p.Account.CustomerID] = true
		case <-time.After(20 * time.Second):
			t.Fatalf("no account_registered for ann within 20s (seen %v)\n%s", seen, out)
		}
	}
	if !seen["staff"] || !seen["operator"] {
		t.Fatalf("the provisioned accounts were not announced: %v", seen)
	}

	// Sign in through the provider; the API trusts the provider's tokens.
	c := &authclient.Client{Issuer: base + "/oauth"}
	if _, err := c.SignIn(ctx, idp.CLIClientID, "ann@example.com", "wrong password"); !errors.Is(err, authclient.ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	annTok, err := c.SignIn(ctx, idp.CLIClientID, "ann@example.com", "ann's long password")
	if err != nil {
		t.Fatal(err)
	}
	res, body = do(t, "POST", base+"/v1/accounts", "", `{"email":"bob@example.com","name":"Bob","password":"bob's long password"}`)
	if res.StatusCode != 201 {
		t.Fatalf("sign up bob: %d %s", res.StatusCode, body)
	}
	bobTok, err := c.SignIn(ctx, idp.CLIClientID, "bob@example.com", "bob's long password")
	if err != nil {
		t.Fatal(err)
	}
	staffTok, err := c.SignIn(ctx, idp.CLIClientID, "staff@sagittarius.example", "staff password 1")
	if err != nil {
		t.Fatal(err)
	}
	demoTok, err := c.ClientCredentials(ctx, "sagittarius-demo", "demo-secret-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	annURL := base + "/v1/accounts/" + ann.ID
	for _, tc := range []struct {
		name, method, url, token string
		status                   int
		challenge                string
	}{
		{"anonymous read", "GET", annURL, "", 401, `Bearer realm="sagittarius"`},
		{"forged token", "GET", annURL, annTok.AccessToken[:len(annTok.AccessToken)-4] + "AAAA", 401, `error="invalid_token"`},
		{"own account", "GET", annURL, annTok.AccessToken, 200, ""},
		{"another customer's account", "GET", annURL, bobTok.AccessToken, 404, ""},
		{"staff reads it", "GET", annURL, staffTok.AccessToken, 200, ""},
		{"demo client (staff) reads it", "GET", annURL, demoTok.AccessToken, 200, ""},
		{"customer lists", "GET", base + "/v1/accounts", annTok.AccessToken, 403, `error="insufficient_scope"`},
		{"anonymous lists", "GET", base + "/v1/accounts", "", 401, `Bearer realm="sagittarius"`},
		{"staff lists", "GET", base + "/v1/accounts?role=customer", staffTok.AccessToken, 200, ""},
		{"root is open", "GET", base + "/v1", "", 200, ""},
	} {
		res, body := do(t, tc.method, tc.url, tc.token, "")
		if res.StatusCode != tc.status || !strings.Contains(res.Header.Get("WWW-Authenticate"), tc.challenge) {
			t.Errorf("%s: %d %q %s", tc.name, res.StatusCode, res.Header.Get("WWW-Authenticate"), body)
			continue
		}
		if tc.status >= 400 && res.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: content type %q", tc.name, res.Header.Get("Content-Type"))
		}
		if tc.name == "staff lists" && (!strings.Contains(string(body), `"total":2`) || strings.Contains(string(body), "argon2")) {
			t.Errorf("staff list: %s", body)
		}
	}

	// The provider's tokens verify with the platform verifier from outside, too.
	v, err := auth.New(auth.Config{Issuer: base + "/oauth", Audience: "sagittarius"})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := v.Verify(ctx, bobTok.AccessToken); err != nil || !p.IsCustomer() {
		t.Fatalf("bob's token: %+v %v", p, err)
	}

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop within 30s")
	}
}

// listen binds a throw-away queue to sagittarius-a of the vhost at adminURL.
func listen(t *testing.T, adminURL string) <-chan amqp.Delivery {
	t.Helper()
	conn, err := amqp.Dial(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, "", "sagittarius-a", false, nil); err != nil {
		t.Fatal(err)
	}
	d, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
