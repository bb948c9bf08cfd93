// Command identity runs iam.accounts: the accounts API (sign-up, read, list
// under /v1/accounts) and the platform's embedded OpenID provider (package
// idp: /oauth/... and the sign-in page /login). It consumes no events; it
// publishes account_registered through its outbox, so it still runs the bus
// (publishing) and the relay.
//
// Environment: see Config. It stops gracefully on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
	"github.com/sagittarius-a/sagittarius/internal/profiling"
	"github.com/sagittarius-a/sagittarius/services/identity/accountevents"
	"github.com/sagittarius-a/sagittarius/services/identity/httpapi"
	"github.com/sagittarius-a/sagittarius/services/identity/idp"
	"github.com/sagittarius-a/sagittarius/services/identity/mysql"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "identity:", err)
		os.Exit(1)
	}
}

// Config is the service's configuration, read from the environment by
// configFrom. Secrets are read from files (*_FILE), never from the
// environment itself.
type Config struct {
	HTTPAddr      string             // HTTP_ADDR, default 127.0.0.1:8087
	AMQPURL       string             // AMQP_URL, required
	MySQLDSN      string             // MYSQL_DSN, required
	PublicBaseURL string             // PUBLIC_BASE_URL, default http://127.0.0.1:8080 (the gateway)
	PublicURL     string             // IDENTITY_PUBLIC_URL, default PUBLIC_BASE_URL + "/identity"; the issuer is this + "/oauth"
	Audience      string             // OIDC_AUDIENCE, default sagittarius
	QueueType     eventbus.QueueType // QUEUE_TYPE, classic (default) or quorum
	PprofAddr     string             // PPROF_ADDR: if set, Go profiles on this loopback address

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
	ShutdownGrace           time.Duration // how long in-flight requests may take at shutdown: 10s
	durationErrs            []error
}

// configFrom reads the configuration from getenv, applying defaults.
func configFrom(getenv func(string) string) Config {
	c := Config{
		HTTPAddr: getenv("HTTP_ADDR"), AMQPURL: getenv("AMQP_URL"), MySQLDSN: getenv("MYSQL_DSN"),
		PublicBaseURL: getenv("PUBLIC_BASE_URL"), PublicURL: getenv("IDENTITY_PUBLIC_URL"), Audience: getenv("OIDC_AUDIENCE"),
		QueueType: eventbus.QueueType(getenv("QUEUE_TYPE")), PprofAddr: getenv("PPROF_ADDR"),
		StaffEmail: getenv("IDENTITY_STAFF_EMAIL"), StaffPasswordFile: getenv("IDENTITY_STAFF_PASSWORD_FILE"),
		OperatorEmail: getenv("IDENTITY_OPERATOR_EMAIL"), OperatorPasswordFile: getenv("IDENTITY_OPERATOR_PASSWORD_FILE"),
		DemoClientID: getenv("IDENTITY_DEMO_CLIENT_ID"), DemoClientSecretFile: getenv("IDENTITY_DEMO_CLIENT_SECRET_FILE"),
		KeyEncryptionSecretFile: getenv("IDENTITY_KEY_ENCRYPTION_SECRET_FILE"),
		MaintenanceInterval:     time.Minute, ShutdownGrace: 10 * time.Second,
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.HTTPAddr, "127.0.0.1:8087")
	def(&c.PublicBaseURL, "http://127.0.0.1:8080")
	def(&c.PublicURL, strings.TrimSuffix(c.PublicBaseURL, "/")+"/identity")
	def(&c.Audience, "sagittarius")
	def(&c.StaffEmail, "staff@sagittarius.example")
	def(&c.OperatorEmail, "operator@sagittarius.example")
	def(&c.DemoClientID, "sagittarius-demo")
	if c.QueueType == "" {
		c.QueueType = eventbus.QueueClassic
	}
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

// Validate reports every missing or invalid setting.
func (c Config) Validate() error {
	errs := append([]error(nil), c.durationErrs...)
	if c.AMQPURL == "" {
		errs = append(errs, errors.New("AMQP_URL is required"))
	}
	if c.MySQLDSN == "" {
		errs = append(errs, errors.New("MYSQL_DSN is required"))
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("HTTP_ADDR %q: %w", c.HTTPAddr, err))
	}
	if _, err := hal.NewBase(c.PublicBaseURL); err != nil {
		errs = append(errs, fmt.Errorf("PUBLIC_BASE_URL: %w", err))
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("IDENTITY_PUBLIC_URL %q: want an absolute http(s) URL", c.PublicURL))
	}
	if c.QueueType != eventbus.QueueClassic && c.QueueType != eventbus.QueueQuorum {
		errs = append(errs, fmt.Errorf("QUEUE_TYPE %q: want classic or quorum", c.QueueType))
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

// run wires the service and serves until ctx is cancelled, then drains. It
// logs JSON lines to stdout.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg := configFrom(getenv)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var (
		prov  idp.Provisioning
		kekey string
		errs  []error
	)
	for _, s := range []struct {
		name, path string
		dst        *string
	}{
		{"IDENTITY_STAFF_PASSWORD_FILE", cfg.StaffPasswordFile, &prov.StaffPassword},
		{"IDENTITY_OPERATOR_PASSWORD_FILE", cfg.OperatorPasswordFile, &prov.OperatorPassword},
		{"IDENTITY_DEMO_CLIENT_SECRET_FILE", cfg.DemoClientSecretFile, &prov.DemoClientSecret},
		{"IDENTITY_KEY_ENCRYPTION_SECRET_FILE", cfg.KeyEncryptionSecretFile, &kekey},
	} {
		v, err := secret(s.name, s.path)
		errs = append(errs, err)
		*s.dst = v
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	prov.StaffEmail, prov.OperatorEmail, prov.DemoClientID = cfg.StaffEmail, cfg.OperatorEmail, cfg.DemoClientID

	logger := slog.New(slog.NewJSONHandler(stdout, nil)).With("service", accountevents.Service)
	if cfg.PprofAddr != "" {
		prof, err := profiling.Start(cfg.PprofAddr, logger)
		if err != nil {
			return err
		}
		defer prof.Close()
	}

	db, err := mysqldb.Open(ctx, cfg.MySQLDSN)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := mysql.Migrate(ctx, db, logger); err != nil {
		return err
	}

	bus, err := eventbus.New(eventbus.Config{URL: cfg.AMQPURL, Service: accountevents.Service, QueueType: cfg.QueueType, Logger: logger})
	if err != nil {
		return err
	}
	if err := bus.Publishes(accountevents.All...); err != nil {
		return err
	}
	relay, err := eventbus.NewRelay(db, bus, eventbus.RelayConfig{Logger: logger})
	if err != nil {
		return err
	}
	base, _ := hal.NewBase(cfg.PublicBaseURL) // checked by Validate
	render := httpapi.NewRenderer(base)
	store, err := mysql.New(db, render.Account, relay.Notify)
	if err != nil {
		return err
	}
	if err := idp.Provision(ctx, store, store, prov); err != nil {
		return err
	}
	provider, err := idp.New(ctx, idp.Config{
		PublicURL: cfg.PublicURL, Audience: cfg.Audience, AccessTokenLifetime: cfg.AccessTokenLifetime,
		KeyRotation: cfg.KeyRotation, KeyEncryptionSecret: kekey, Logger: logger,
	}, store, store)
	if err != nil {
		return err
	}
	oidc := provider.Handler()

	// The API verifies the tokens of its own provider like any service
	// does (discovery, JWKS, signature), but fetches them in process: the
	// public URL may be the gateway, which need not be up.
	verifier, err := auth.New(auth.Config{Issuer: provider.Issuer(), Audience: cfg.Audience,
		HTTPClient: &http.Client{Transport: inProcess{handler: oidc, publicURL: cfg.PublicURL}, Timeout: 10 * time.Second}})
	if err != nil {
		return err
	}

	health := httpkit.Health(map[string]httpkit.Check{
		"mysql":    func(ctx context.Context) error { return db.PingContext(ctx) },
		"rabbitmq": func(context.Context) error { return bus.Healthy() },
	})
	api := httpapi.New(store, render, logger)
	routes := api.Routes(health)
	if _, err := contracts.Mount(routes, api.Contract(bus), base.Join("identity", "v1")); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/oauth/", oidc)
	mux.Handle("/login", oidc)
	mux.Handle("/", verifier.Guard(auth.Requirement{Anonymous: true}, logger, routes))
	handler := httpkit.Stack(mux, httpkit.Options{
		Logger:          logger,
		WithRequestID:   eventbus.WithCorrelationID,
		WithTraceparent: eventbus.WithTraceparent,
	})
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	logger.Info("listening", "addr", ln.Addr().String(), "issuer", provider.Issuer())

	// The bus, the relay, the provider's maintenance and the HTTP server run
	// until ctx is done; the first to fail stops the others.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		runErrs []error
	)
	start := func(name string, fn func(context.Context) error) {
		wg.Go(func() {
			if err := fn(ctx); err != nil {
				mu.Lock()
				runErrs = append(runErrs, fmt.Errorf("%s: %w", name, err))
				mu.Unlock()
			}
			cancel()
		})
	}
	start("bus", bus.Run)
	start("relay", relay.Run)
	start("provider", func(ctx context.Context) error { return provider.Run(ctx, cfg.MaintenanceInterval) })
	start("http", func(ctx context.Context) error {
		return httpkit.Serve(ctx, httpkit.NewServer(handler), ln, cfg.ShutdownGrace)
	})
	wg.Wait()
	logger.Info("stopped")
	return errors.Join(runErrs...)
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
