// Command identity runs iam.accounts: the accounts API (sign-up, read, list
// under /v1/accounts) and the platform's embedded OpenID provider (package
// idp: /oauth/... and the sign-in page /login, served outside the API's
// router with Process.HandlePrefix). It consumes no events; it publishes
// account_registered through its outbox.
//
// Configuration, database, bus, relay, /health, contracts, middleware and the
// graceful shutdown are the service kit's (internal/service; environment in
// service.Config). Its own settings are in Config (IDENTITY_*), its secrets
// in files. Its API verifies the tokens of its own provider, fetched in
// process, so OIDC_ISSUER need not be set for it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/service"
	"github.com/sagittarius-a/sagittarius/services/identity/accountevents"
	"github.com/sagittarius-a/sagittarius/services/identity/httpapi"
	"github.com/sagittarius-a/sagittarius/services/identity/idp"
	"github.com/sagittarius-a/sagittarius/services/identity/mysql"
)

func main() { service.Main(run) }

// Config is the identity service's own configuration, read from the
// environment by configFrom (the kit reads the rest). Secrets are read from
// files (*_FILE), never from the environment itself.
type Config struct {
	PublicURL string // IDENTITY_PUBLIC_URL, default PUBLIC_BASE_URL + "/identity"; the issuer is this + "/oauth"
	Audience  string // OIDC_AUDIENCE, default sagittarius

	AccessTokenLifetime time.Duration // IDENTITY_ACCESS_TOKEN_LIFETIME, default 15m
	KeyRotation         time.Duration // IDENTITY_KEY_ROTATION, default 720h (30 days)

	// Provisioning (see idp.Provision). The password and secret files hold
	// one line; an unset file skips that account or client.
	StaffEmail           string // IDENTITY_STAFF_EMAIL, default staff@sagittarius.example
	StaffPasswordFile    string // IDENTITY_STAFF_PASSWORD_FILE
	OperatorEmail        string // IDENTITY_OPERATOR_EMAIL, default operator@sagittarius.example
	OperatorPasswordFile string // IDENTITY_OPERATOR_PASSWORD_FILE
	DemoClientID         string // IDENTITY_DEMO_CLIENT_ID, default sagittarius-demo
	DemoClientSecretFile string // IDENTITY_DEMO_CLIENT_SECRET_FILE
	// KeyEncryptionSecretFile (IDENTITY_KEY_ENCRYPTION_SECRET_FILE) holds a
	// secret of at least 32 characters that seals the signing keys in the
	// database (idp.Config.KeyEncryptionSecret); unset: stored in the clear.
	KeyEncryptionSecretFile string
	MaintenanceInterval     time.Duration // key refresh and sweep: 1m
	durationErrs            []error
}

// configFrom reads the configuration from getenv, applying defaults;
// publicBaseURL is the kit's PUBLIC_BASE_URL.
func configFrom(getenv func(string) string, publicBaseURL string) Config {
	c := Config{
		PublicURL: getenv("IDENTITY_PUBLIC_URL"), Audience: getenv("OIDC_AUDIENCE"),
		StaffEmail: getenv("IDENTITY_STAFF_EMAIL"), StaffPasswordFile: getenv("IDENTITY_STAFF_PASSWORD_FILE"),
		OperatorEmail: getenv("IDENTITY_OPERATOR_EMAIL"), OperatorPasswordFile: getenv("IDENTITY_OPERATOR_PASSWORD_FILE"),
		DemoClientID: getenv("IDENTITY_DEMO_CLIENT_ID"), DemoClientSecretFile: getenv("IDENTITY_DEMO_CLIENT_SECRET_FILE"),
		KeyEncryptionSecretFile: getenv("IDENTITY_KEY_ENCRYPTION_SECRET_FILE"),
		MaintenanceInterval:     time.Minute,
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.PublicURL, strings.TrimSuffix(publicBaseURL, "/")+"/identity")
	def(&c.Audience, "sagittarius")
	def(&c.StaffEmail, "staff@sagittarius.example")
	def(&c.OperatorEmail, "operator@sagittarius.example")
	def(&c.DemoClientID, "sagittarius-demo")
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{"IDENTITY_ACCESS_TOKEN_LIFETIME", &c.AccessTokenLifetime}, {"IDENTITY_KEY_ROTATION", &c.KeyRotation}} {
		if s := getenv(d.name); s != "" {
			v, err := time.ParseDuration(s)
			if err != nil || v <= 0 {
				c.durationErrs = append(c.durationErrs, fmt.Errorf("%s %q: want a positive duration like 15m", d.name, s))
			}
			*d.dst = v
		}
	}
	return c
}

// Validate reports every invalid setting.
func (c Config) Validate() error {
	errs := append([]error(nil), c.durationErrs...)
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("IDENTITY_PUBLIC_URL %q: want an absolute http(s) URL", c.PublicURL))
	}
	return errors.Join(errs...)
}

// secret reads the first line of the file at path ("" when path is "").
func secret(name, path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	s, _, _ := strings.Cut(string(b), "\n")
	s = strings.TrimRight(s, "\r")
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty", name, path)
	}
	return s, nil
}

// secrets reads the provisioning secrets and the key-encryption secret.
func (c Config) secrets() (idp.Provisioning, string, error) {
	var (
		prov  idp.Provisioning
		kekey string
		errs  []error
	)
	for _, s := range []struct {
		name, path string
		dst        *string
	}{
		{"IDENTITY_STAFF_PASSWORD_FILE", c.StaffPasswordFile, &prov.StaffPassword},
		{"IDENTITY_OPERATOR_PASSWORD_FILE", c.OperatorPasswordFile, &prov.OperatorPassword},
		{"IDENTITY_DEMO_CLIENT_SECRET_FILE", c.DemoClientSecretFile, &prov.DemoClientSecret},
		{"IDENTITY_KEY_ENCRYPTION_SECRET_FILE", c.KeyEncryptionSecretFile, &kekey},
	} {
		v, err := secret(s.name, s.path)
		errs = append(errs, err)
		*s.dst = v
	}
	prov.StaffEmail, prov.OperatorEmail, prov.DemoClientID = c.StaffEmail, c.OperatorEmail, c.DemoClientID
	return prov, kekey, errors.Join(errs...)
}

// run serves iam.accounts until ctx is done (see service.Run).
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	spec := service.Spec{Dir: "identity", Name: accountevents.Service, Addr: "127.0.0.1:8087",
		Migrations: mysql.Migrations, Publishes: accountevents.All}
	cfg := configFrom(getenv, service.ConfigFrom(getenv, spec).PublicBaseURL)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	prov, kekey, err := cfg.secrets()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return service.Run(ctx, getenv, stdout, spec, func(p *service.Process) (service.API, error) {
		render := httpapi.NewRenderer(p.Base)
		store, err := mysql.New(p.DB, render.Account, p.Relay.Notify)
		if err != nil {
			return nil, err
		}
		api := httpapi.New(store, render, p.Logger)
		if p.Config.PrintContracts {
			return api, nil // the provider needs the database
		}
		if err := idp.Provision(ctx, store, store, prov); err != nil {
			return nil, err
		}
		provider, err := idp.New(ctx, idp.Config{
			PublicURL: cfg.PublicURL, Audience: cfg.Audience, AccessTokenLifetime: cfg.AccessTokenLifetime,
			KeyRotation: cfg.KeyRotation, KeyEncryptionSecret: kekey, Logger: p.Logger,
		}, store, store)
		if err != nil {
			return nil, err
		}
		oidc := provider.Handler()
		p.HandlePrefix("/oauth/", oidc)
		p.HandlePrefix("/login", oidc)
		p.Go("provider", func(ctx context.Context) error { return provider.Run(ctx, cfg.MaintenanceInterval) })
		// The API verifies the tokens of its own provider like any service
		// does (discovery, JWKS, signature), but fetches them in process:
		// the public URL may be the gateway, which need not be up.
		p.Verifier, err = auth.New(auth.Config{Issuer: provider.Issuer(), Audience: cfg.Audience,
			HTTPClient: &http.Client{Transport: inProcess{handler: oidc, publicURL: cfg.PublicURL}, Timeout: 10 * time.Second}})
		if err != nil {
			return nil, err
		}
		p.Logger.Info("OpenID provider", "issuer", provider.Issuer())
		return api, nil
	})
}

// inProcess is an http.RoundTripper that serves requests for URLs under
// publicURL with handler, in process (the path made relative to
// publicURL's), and refuses any other URL.
type inProcess struct {
	handler   http.Handler
	publicURL string
}

func (t inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	prefix := strings.TrimSuffix(t.publicURL, "/")
	raw := r.URL.String()
	if !strings.HasPrefix(raw, prefix+"/") {
		return nil, fmt.Errorf("identity: %s is not under %s", raw, prefix)
	}
	u, err := url.Parse(raw[len(prefix):])
	if err != nil {
		return nil, err
	}
	in := r.Clone(r.Context())
	in.URL, in.RequestURI, in.Host = u, u.RequestURI(), r.URL.Host
	rec := httptest.NewRecorder()
	t.handler.ServeHTTP(rec, in)
	res := rec.Result()
	res.Request = r
	return res, nil
}
