// Package service owns the process of a Sagittarius service, so that each
// service's main.go keeps only what is its own: its events, its store, its
// handlers and its routes.
//
// A service's main.go is
//
//	func main() { service.Main(run) }
//
//	func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
//		return service.Run(ctx, getenv, stdout, service.Spec{
//			Dir: "orders", Name: orderevents.Service, Addr: "127.0.0.1:8083",
//			Migrations: mysql.Migrations, Publishes: orderevents.All,
//		}, func(p *service.Process) (service.API, error) {
//			render := httpapi.NewRenderer(p.Base)
//			store, err := mysql.NewStore(p.DB, render.Order, p.Relay.Notify)
//			… register handlers on p.Bus, add background work with p.Go …
//			return httpapi.New(store, render, p.Logger), nil
//		})
//	}
//
// Run does the rest, in this order: the configuration (ConfigFrom, one
// Validate), the JSON logger on stdout, pprof (PPROF_ADDR), the database
// (opened within Config.OpenTimeout; the service's goose migrations, the
// bus tables and the failed-messages tables), the bus (eventbus.New,
// Publishes), the relay, the failed messages (internal/failedmsg: the keeper
// of the dead letters, an actor of the group, and its routes, added to the
// service's contract), the service's
// wiring, the router (GET /health checking MySQL and RabbitMQ, the route
// table of the service's contract, the contract routes of contracts.Mount),
// the middleware stack (httpkit.Stack), and the run group: the HTTP server,
// the bus, the relay and the service's own actors run until ctx is done
// (SIGINT or SIGTERM in Main) or one of them returns; then every actor is
// interrupted: the HTTP server stops taking requests and waits up to
// Config.ShutdownGrace for those in flight, the bus finishes the handlers in
// flight, the relay stops.
//
// With SAGITTARIUS_PRINT_CONTRACTS=1, Run connects to nothing: it wires the
// service on a database handle and a bus that never connect, writes its
// manifests (OpenAPI and AsyncAPI, JSON) to stdout and returns. cmd/contracts
// builds every service of scripts/services.conf and runs it that way.
//
// # Where platform-wide concerns go
//
// A concern every service needs is added here once, not in six main.go:
//   - a setting: a field of Config, read in ConfigFrom, checked in Validate;
//   - an HTTP middleware (token verification, request metrics, tracing
//     spans): in Process.handler, around or inside httpkit.Stack;
//   - an operational route that is not part of the API contract (Prometheus
//     GET /metrics): in Process.handler, beside GET /health;
//   - a process-wide component with a lifetime (a tracer provider, a metrics
//     registry): created in Run before the wiring, exposed as a field of
//     Process if services use it, shut down with a deferred call or run as an
//     actor of the group (Group.Go);
//   - bus or relay instrumentation: where Run creates them (eventbus.Config,
//     eventbus.RelayConfig).
//
// Observability is wired here that way: Process.Telemetry (internal/telemetry)
// serves GET /metrics and wraps the whole stack (route-labelled HTTP metrics,
// server spans), instruments the database pool, and gives the bus its
// Observer and TracerProvider. GET /health/live answers while the process
// serves (the liveness probe); GET /health checks the database and the broker.
//
// A service adds what is its own through Process: p.Go for a background
// actor (orders' purge of old Idempotency-Keys), p.Handle for an extra route
// outside its contract, p.Use for a middleware of its own.
package service

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/failedmsg"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
	"github.com/sagittarius-a/sagittarius/internal/profiling"
	"github.com/sagittarius-a/sagittarius/internal/telemetry"
)

// Spec is what the kit needs to know about a service before its wiring runs.
type Spec struct {
	// Dir is the service's directory under services/, its gateway prefix and
	// the name of its manifests ("orders"). Required.
	Dir string
	// Name is the service's name (sales.orders): its queue, app_id and
	// RabbitMQ user. "" means no bus and no database (the gateway).
	Name string
	// Addr is the default HTTP_ADDR ("127.0.0.1:8083", its port in
	// scripts/services.conf). Required.
	Addr string
	// Migrations are the service's goose migrations (the .sql files at the
	// root of the FS, typically embedded). The bus tables are added anyway.
	Migrations fs.FS
	// Publishes are the event types the service publishes (bus.Publishes).
	Publishes []eventbus.EventInfoer
}

// API is what a service's wiring returns: something that describes the
// service for its manifests. Contract returns the service's route table
// (served by the kit's router) and its description; events is the bus, nil
// for a service without one. An API that is also an http.Handler (the
// gateway, a reverse proxy) is served as it is: no router, no GET /health and
// no contract routes are added for it.
type API interface {
	Contract(events contracts.Events) contracts.Service
}

// Process is a service's process as its wiring sees it: the configuration and
// the infrastructure the kit opened, and the places to add its own actors,
// routes and middleware. Without a bus (Spec.Name ""), DB, Bus and Relay are
// nil. When printing contracts, DB and Bus never connect and nothing added
// with Go runs.
type Process struct {
	Config Config
	Logger *slog.Logger
	Base   hal.Base // PUBLIC_BASE_URL: build links with Base.Join(dir, "v1")
	DB     *sqlx.DB
	Bus    *eventbus.Bus
	Relay  *eventbus.Relay
	// Listen, when the wiring sets it, opens the HTTP listener instead of
	// net.Listen("tcp", addr) (the gateway's edge: HTTPS, connection bounds).
	Listen func(addr string) (net.Listener, error)
	// Telemetry is the process's metrics registry (/metrics) and tracer
	// (OpenTelemetry, exporting when OTEL_* say where): register a service's
	// own metrics with Telemetry.Registerer().
	Telemetry *telemetry.T
	// Verifier verifies the access tokens of every route: the kit wraps each
	// route of the contract with Verifier.Guard for its Route.Auth. Run
	// creates it from Config.Auth (OIDC_ISSUER) before the wiring; the
	// wiring may replace it (the identity service trusts its own provider,
	// in process). Nil after the wiring is an error: no service runs
	// without verifying tokens. Nil when printing contracts.
	Verifier *auth.Verifier

	spec     Spec
	group    Group
	keeper   *failedmsg.Keeper // nil without a bus
	failed   *failedmsg.API    // nil without a bus
	routes   []route
	prefixes []route
	mws      []func(http.Handler) http.Handler
}

type route struct {
	pattern string
	h       http.Handler
}

// Go adds a background actor to the run group: fn runs until its context is
// done (then it must return nil) or its work fails (then the process stops).
func (p *Process) Go(name string, fn func(ctx context.Context) error) { p.group.Go(name, fn) }

// Handle adds a route outside the service's contract (e.g. an operational
// endpoint) to the kit's router.
func (p *Process) Handle(pattern string, h http.Handler) {
	p.routes = append(p.routes, route{pattern, h})
}

// HandlePrefix serves every request whose path is prefix, or starts with
// prefix when it ends in "/", with h, whatever the method, outside the
// service's router: no contract, no token verification, no 404/405 problems
// of the router. It is for a protocol surface that is not the service's REST
// API (the identity service's OpenID provider, /oauth/ and /login). The
// standard middleware stack still applies.
func (p *Process) HandlePrefix(prefix string, h http.Handler) {
	p.prefixes = append(p.prefixes, route{prefix, h})
}

// Use adds a middleware of the service's own, inside the standard stack
// (after request id, logging, recovery and the body limit).
func (p *Process) Use(mw func(http.Handler) http.Handler) { p.mws = append(p.mws, mw) }

// Main runs run with the process's environment and stdout until SIGINT or
// SIGTERM, and exits 1 with the error on stderr when it fails.
func Main(run func(ctx context.Context, getenv func(string) string, stdout io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", processName(), err)
		os.Exit(1)
	}
}

func processName() string {
	if len(os.Args) == 0 {
		return "service"
	}
	name := os.Args[0]
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '/' || name[i] == '\\' {
			return name[i+1:]
		}
	}
	return name
}

// Run runs the service spec, wired by wire, until ctx is done or a part of it
// fails (see the package documentation). It logs JSON lines to stdout. It
// returns nil after a shutdown caused by ctx, the configuration error before
// starting anything, or the errors of the parts that failed.
func Run(ctx context.Context, getenv func(string) string, stdout io.Writer, spec Spec, wire func(p *Process) (API, error)) error {
	cfg := ConfigFrom(getenv, spec)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if cfg.PrintContracts {
		return printContracts(stdout, cfg, spec, wire)
	}
	logName := spec.Name
	if logName == "" {
		logName = spec.Dir
	}
	p := &Process{
		Config: cfg, spec: spec,
		// Logs written with a context carry its trace_id and span_id.
		Logger: slog.New(telemetry.LogHandler(slog.NewJSONHandler(stdout, nil))).With("service", logName),
	}
	p.Base, _ = hal.NewBase(cfg.PublicBaseURL) // checked by Validate
	metricsName := spec.Name
	if metricsName == "" {
		metricsName = spec.Dir
	}
	tel, err := telemetry.New(ctx, telemetry.Config{Service: metricsName, Getenv: getenv, Logger: p.Logger})
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.WithoutCancel(ctx))
	p.Telemetry = tel
	if cfg.PprofAddr != "" {
		prof, err := profiling.Start(cfg.PprofAddr, p.Logger)
		if err != nil {
			return err
		}
		defer prof.Close()
	}
	if spec.Name != "" {
		openCtx, cancel := context.WithTimeout(ctx, cfg.OpenTimeout)
		db, err := mysqldb.Open(openCtx, cfg.MySQLDSN, mysqldb.WithCAFile(cfg.MySQLCAFile))
		cancel()
		if err != nil {
			return err
		}
		defer db.Close()
		if err := tel.InstrumentDB(db, spec.Dir); err != nil {
			return err
		}
		if err := Migrate(ctx, db, spec.Migrations, p.Logger); err != nil {
			return err
		}
		if err := p.openBus(db, cfg.AMQPURL); err != nil {
			return err
		}
		p.openFailed()
	}
	if cfg.Auth.Issuer != "" {
		if p.Verifier, err = auth.New(cfg.Auth); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	api, err := wire(p)
	if err != nil {
		return err
	}
	if p.Verifier == nil {
		return errors.New("config: OIDC_ISSUER and OIDC_AUDIENCE are required: every service verifies the access tokens of its callers")
	}
	handler, err := p.handler(api)
	if err != nil {
		return err
	}
	listen := func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
	if p.Listen != nil {
		listen = p.Listen
	}
	ln, err := listen(cfg.HTTPAddr)
	if err != nil {
		return err
	}
	p.Logger.Info("listening", "addr", ln.Addr().String(), "public_base_url", cfg.PublicBaseURL)

	srv := httpkit.NewServer(handler)
	httpCtx, stopHTTP := context.WithCancel(context.Background())
	p.group.Add("http", func() error { return httpkit.Serve(httpCtx, srv, ln, cfg.ShutdownGrace) }, func(error) { stopHTTP() })
	if p.Bus != nil {
		p.group.Go("bus", p.Bus.Run)
		p.group.Go("relay", p.Relay.Run)
		p.group.Go("failed-messages", p.keeper.Run)
	}
	signalled := make(chan struct{})
	p.group.Add("signal", func() error {
		select {
		case <-ctx.Done():
		case <-signalled:
		}
		return nil
	}, func(error) { close(signalled) })
	err = p.group.Run(func(name string, err error) {
		p.Logger.Info("stopping", "first_to_return", name, "error", err)
	})
	p.Logger.Info("stopped")
	return err
}

// Migrate applies a service's goose migrations (nil for none), then the
// tables of the bus (outbox, inbox) and of the failed-messages keeper to db:
// what Run does at start, and what a store's tests do to get the same
// schema (servicetest.NewDatabase). It is idempotent; logger may be nil.
func Migrate(ctx context.Context, db *sqlx.DB, migrations fs.FS, logger *slog.Logger) error {
	if migrations != nil {
		if err := mysqldb.Migrate(ctx, db, migrations, logger); err != nil {
			return err
		}
	}
	if err := eventbus.Migrate(ctx, db); err != nil {
		return fmt.Errorf("eventbus tables: %w", err)
	}
	if err := failedmsg.Migrate(ctx, db); err != nil {
		return fmt.Errorf("failed-messages tables: %w", err)
	}
	return nil
}

// openBus creates the bus and the relay on db (nothing connects yet).
func (p *Process) openBus(db *sqlx.DB, amqpURL string) error {
	cfg := eventbus.Config{URL: amqpURL, Service: p.spec.Name, QueueType: p.Config.QueueType, Logger: p.Logger, CAFile: p.Config.AMQPCAFile}
	if p.Telemetry != nil { // nil when printing contracts
		cfg = p.Telemetry.BusConfig(cfg)
	}
	bus, err := eventbus.New(cfg)
	if err != nil {
		return err
	}
	if p.Telemetry != nil {
		if err := p.Telemetry.ObserveBus(bus); err != nil {
			return err
		}
	}
	if err := bus.Publishes(p.spec.Publishes...); err != nil {
		return err
	}
	relay, err := eventbus.NewRelay(db, bus, eventbus.RelayConfig{Logger: p.Logger})
	if err != nil {
		return err
	}
	p.DB, p.Bus, p.Relay = db, bus, relay
	return nil
}

// events returns the bus as contracts.Events, nil (not a nil *Bus) without one.
func (p *Process) events() contracts.Events {
	if p.Bus == nil {
		return nil
	}
	return p.Bus
}

// contract returns api's description and checks it against the spec.
func (p *Process) contract(api API) (contracts.Service, error) {
	svc := p.withFailed(api.Contract(p.events()))
	if svc.Dir != p.spec.Dir {
		return svc, fmt.Errorf("service: the contract's Dir %q is not the spec's %q", svc.Dir, p.spec.Dir)
	}
	if p.spec.Name != "" && svc.Name != p.spec.Name {
		return svc, fmt.Errorf("service: the contract's Name %q is not the spec's %q", svc.Name, p.spec.Name)
	}
	// A route without an access requirement (Route.Auth) is not served.
	return svc, svc.Validate()
}

// handler returns the service's HTTP handler: the router (GET /health, the
// contract's routes, the contract routes, the routes added with Handle) or
// the API itself when it is an http.Handler, inside the service's own
// middleware and the standard stack.
func (p *Process) handler(api API) (http.Handler, error) {
	svc, err := p.contract(api)
	if err != nil {
		return nil, err
	}
	var h http.Handler
	if own, ok := api.(http.Handler); ok {
		h = own
	} else {
		rt := httpkit.NewRouter()
		if p.Bus != nil {
			rt.Handle("GET /health", httpkit.Health(map[string]httpkit.Check{
				"mysql":    p.DB.PingContext,
				"rabbitmq": func(context.Context) error { return p.Bus.Healthy() },
			}))
		}
		contracts.HandleRoutes(rt, p.guard(svc.Routes))
		if _, err := contracts.Mount(rt, svc, p.Base.Join(svc.Dir, "v1")); err != nil {
			return nil, err
		}
		for _, r := range p.routes {
			rt.Handle(r.pattern, r.h)
		}
		h = rt
		if len(p.prefixes) > 0 {
			outer := http.NewServeMux()
			for _, r := range p.prefixes {
				outer.Handle(r.pattern, r.h)
			}
			outer.Handle("/", rt)
			h = outer
		}
	}
	for i := len(p.mws) - 1; i >= 0; i-- {
		h = p.mws[i](h)
	}
	opts := httpkit.Options{Logger: p.Logger}
	if p.Bus != nil {
		opts.WithRequestID = eventbus.WithCorrelationID
		opts.WithTraceparent = eventbus.WithTraceparent
	}
	// Telemetry outermost: it serves /metrics and measures the whole stack.
	return live(p.Telemetry.Middleware(httpkit.Stack(h, opts))), nil
}

// LivePath answers 200 while the process serves HTTP, whatever its database
// and broker do: the liveness probe (Kubernetes restarts a container whose
// liveness fails, and restarting never cures a broker outage). GET /health is
// the readiness check.
const LivePath = "/health/live"

// live answers GET and HEAD LivePath itself, unlogged (probes come every few
// seconds), and passes every other request to next.
func live(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == LivePath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			_, _ = io.WriteString(w, `{"status":"up"}`)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// guard returns the routes of table with each handler wrapped by the
// verifier's Guard for the route's requirement (the principal then in the
// request context: auth.FromContext). Without a verifier (printing
// contracts) it returns table.
func (p *Process) guard(table []contracts.Route) []contracts.Route {
	if p.Verifier == nil {
		return table
	}
	out := make([]contracts.Route, len(table))
	for i, r := range table {
		if r.Handler != nil && r.Auth != nil {
			r.Handler = p.Verifier.Guard(*r.Auth, p.Logger, withActor(r.Handler)).ServeHTTP
		}
		out[i] = r
	}
	return out
}

// withActor puts the verified caller into the context for the events the
// request causes (eventbus.WithActor: headers actor_subject, actor_role).
func withActor(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if pr, ok := auth.FromContext(r.Context()); ok {
			r = r.WithContext(eventbus.WithActor(r.Context(), pr.Subject, string(actingRole(pr))))
		}
		next(w, r)
	})
}

// actingRole is the role a principal acts in: operator, then staff, then
// customer; "" without a platform role.
func actingRole(p *auth.Principal) auth.Role {
	for _, r := range []auth.Role{auth.RoleOperator, auth.RoleStaff, auth.RoleCustomer} {
		if p.HasRole(r) {
			return r
		}
	}
	return ""
}

// neverDB returns a database handle that never connects (until used, which
// printing contracts does not do).
func neverDB() *sqlx.DB {
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.DBName = "tcp", "127.0.0.1:1", "contracts"
	conn, _ := mysql.NewConnector(cfg) // only validates cfg; dials when used
	return sqlx.NewDb(sql.OpenDB(conn), "mysql")
}
