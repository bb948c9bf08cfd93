package platform

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/authclient"
)

// The identity service's provisioned accounts and clients (services/identity,
// scripts/infra-up): the platform generates their secrets under Dir/secrets
// like scripts/up does under .data/secrets.
const (
	// DemoClientID is the machine client with role staff (client credentials).
	DemoClientID = "sagittarius-demo"
	// CLIClientID is the public client people sign in with (authorization
	// code with PKCE), e.g. customers who signed up.
	CLIClientID = "sagittarius-cli"
	// StaffEmail and OperatorEmail are the provisioned people.
	StaffEmail    = "staff@sagittarius.example"
	OperatorEmail = "operator@sagittarius.example"
)

// identitySecrets are the files the identity service reads its provisioning
// from (IDENTITY_*_FILE), by file name.
var identitySecrets = map[string]string{
	"identity-staff.password":        "IDENTITY_STAFF_PASSWORD_FILE",
	"identity-operator.password":     "IDENTITY_OPERATOR_PASSWORD_FILE",
	"identity-demo-client.secret":    "IDENTITY_DEMO_CLIENT_SECRET_FILE",
	"identity-key-encryption.secret": "IDENTITY_KEY_ENCRYPTION_SECRET_FILE",
}

// writeSecrets writes a random value to each identity secret file under
// dir (mode 600) and returns the identity service's environment naming them.
func writeSecrets(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var env []string
	for name, key := range identitySecrets {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(randomHex(16)+"\n"), 0o600); err != nil {
			return nil, err
		}
		env = append(env, key+"="+path)
	}
	return env, nil
}

// SecretsDir is where the identity secrets are (SAGITTARIUS_SECRETS for
// scripts/token and cmd/token).
func (p *Platform) SecretsDir() string { return filepath.Join(p.cfg.Dir, "secrets") }

// Issuer is the OpenID Connect issuer every service trusts (OIDC_ISSUER):
// the identity service behind the gateway.
func (p *Platform) Issuer() string { return p.Gateway + "/identity/oauth" }

// Secret returns the content of the identity secret file name (e.g.
// "identity-staff.password").
func (p *Platform) Secret(name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(p.SecretsDir(), name))
	return string(bytes.TrimSpace(b)), err
}

// AuthClient is a client of the platform's provider.
func (p *Platform) AuthClient() *authclient.Client {
	return &authclient.Client{Issuer: p.Issuer(), HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// StaffToken returns an access token with role staff: the demo client's,
// obtained with client credentials, cached until a minute before it expires.
func (p *Platform) StaffToken(ctx context.Context) (string, error) {
	p.tokenMu.Lock()
	defer p.tokenMu.Unlock()
	if p.staffToken != "" && time.Now().Before(p.staffUntil) {
		return p.staffToken, nil
	}
	secret, err := p.Secret("identity-demo-client.secret")
	if err != nil {
		return "", err
	}
	tok, err := p.AuthClient().ClientCredentials(ctx, DemoClientID, secret)
	if err != nil {
		return "", fmt.Errorf("platform: staff token: %w", err)
	}
	p.staffToken, p.staffUntil = tok.AccessToken, time.Now().Add(time.Duration(tok.ExpiresIn)*time.Second-time.Minute)
	return p.staffToken, nil
}

// OperatorToken returns an access token with role operator (the
// operations endpoints): the provisioned operator signed in through the
// provider's sign-in form (authorization code with PKCE), cached until a
// minute before it expires.
func (p *Platform) OperatorToken(ctx context.Context) (string, error) {
	p.tokenMu.Lock()
	defer p.tokenMu.Unlock()
	if p.operatorToken != "" && time.Now().Before(p.operatorUntil) {
		return p.operatorToken, nil
	}
	password, err := p.Secret("identity-operator.password")
	if err != nil {
		return "", err
	}
	tok, err := p.AuthClient().SignIn(ctx, CLIClientID, OperatorEmail, password)
	if err != nil {
		return "", fmt.Errorf("platform: operator token: %w", err)
	}
	p.operatorToken, p.operatorUntil = tok.AccessToken, time.Now().Add(time.Duration(tok.ExpiresIn)*time.Second-time.Minute)
	return p.operatorToken, nil
}

// Customer is a customer who signed up through the identity service.
type Customer struct {
	AccountID  string
	CustomerID string
	Email      string
	Token      string // an access token (role customer, customer_id CustomerID)
}

// SignUpCustomer signs a customer up (POST /identity/v1/accounts through the
// gateway) and signs them in through the provider's sign-in form
// (authorization code with PKCE), returning their access token. The
// customer record in crm.customers follows by choreography
// (account_registered).
func (p *Platform) SignUpCustomer(ctx context.Context, email, name, password string) (Customer, error) {
	body, _ := json.Marshal(map[string]string{"email": email, "name": name, "password": password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Gateway+"/identity/v1/accounts", bytes.NewReader(body))
	if err != nil {
		return Customer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Customer{}, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return Customer{}, fmt.Errorf("platform: sign up %s: %d %s", email, resp.StatusCode, b)
	}
	var acct struct {
		ID         string `json:"id"`
		CustomerID string `json:"customer_id"`
	}
	if err := json.Unmarshal(b, &acct); err != nil {
		return Customer{}, err
	}
	tok, err := p.AuthClient().SignIn(ctx, CLIClientID, email, password)
	if err != nil {
		return Customer{}, fmt.Errorf("platform: sign in %s: %w", email, err)
	}
	return Customer{AccountID: acct.ID, CustomerID: acct.CustomerID, Email: email, Token: tok.AccessToken}, nil
}

// tokenCache holds the platform's cached staff and operator tokens.
type tokenCache struct {
	tokenMu       sync.Mutex
	staffToken    string
	staffUntil    time.Time
	operatorToken string
	operatorUntil time.Time
}
