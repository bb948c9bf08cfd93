// Command payments runs finance.payments: it charges orders whose stock is reserved through a simulated
// payment provider, refunds them when they are cancelled after capture, and serves the payments
// through its HAL API.
//
// Environment: HTTP_ADDR (default 127.0.0.1:8085), AMQP_URL, MYSQL_DSN (required), PUBLIC_BASE_URL
// (default http://127.0.0.1:8080), QUEUE_TYPE (classic or quorum, default classic). FAULT_INJECT is
// for fault tests only (see faults.go).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
	"github.com/sagittarius-a/sagittarius/internal/profiling"
	"github.com/sagittarius-a/sagittarius/internal/telemetry"
	"github.com/sagittarius-a/sagittarius/services/payments/eventapi"
	"github.com/sagittarius-a/sagittarius/services/payments/httpapi"
	paymysql "github.com/sagittarius-a/sagittarius/services/payments/mysql"
	"github.com/sagittarius-a/sagittarius/services/payments/payment"
	"github.com/sagittarius-a/sagittarius/services/payments/paymentevents"
	"github.com/sagittarius-a/sagittarius/services/payments/simulator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "payments:", err)
		os.Exit(1)
	}
}

// config is the service's configuration, read from the environment by main.
type config struct {
	HTTPAddr      string
	AMQPURL       string
	MySQLDSN      string
	PublicBaseURL string
	QueueType     eventbus.QueueType
	PprofAddr     string // PPROF_ADDR: if set, Go profiles (net/http/pprof) on this loopback address; off by default
	FaultInject   string // FAULT_INJECT: test-only faults of the payment provider (faults.go); unset in production
	ShutdownGrace time.Duration
}

func configFrom(getenv func(string) string) config {
	c := config{
		HTTPAddr:      getenv("HTTP_ADDR"),
		PprofAddr:     getenv("PPROF_ADDR"),
		FaultInject:   getenv("FAULT_INJECT"),
		AMQPURL:       getenv("AMQP_URL"),
		MySQLDSN:      getenv("MYSQL_DSN"),
		PublicBaseURL: getenv("PUBLIC_BASE_URL"),
		QueueType:     eventbus.QueueType(getenv("QUEUE_TYPE")),
		ShutdownGrace: 10 * time.Second,
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8085"
	}
	if c.PublicBaseURL == "" {
		c.PublicBaseURL = "http://127.0.0.1:8080"
	}
	if c.QueueType == "" {
		c.QueueType = eventbus.QueueClassic
	}
	return c
}

// Validate reports every invalid field of c.
func (c config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("HTTP_ADDR %q: %w", c.HTTPAddr, err))
	}
	if c.AMQPURL == "" {
		errs = append(errs, errors.New("AMQP_URL is required"))
	}
	if c.MySQLDSN == "" {
		errs = append(errs, errors.New("MYSQL_DSN is required"))
	} else if _, err := mysql.ParseDSN(c.MySQLDSN); err != nil {
		errs = append(errs, fmt.Errorf("MYSQL_DSN: %w", err))
	}
	if _, err := hal.NewBase(c.PublicBaseURL); err != nil {
		errs = append(errs, fmt.Errorf("PUBLIC_BASE_URL: %w", err))
	}
	if c.QueueType != eventbus.QueueClassic && c.QueueType != eventbus.QueueQuorum {
		errs = append(errs, fmt.Errorf("QUEUE_TYPE %q: want classic or quorum", c.QueueType))
	}
	if _, err := parseFaults(c.FaultInject); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// run starts the service and blocks until ctx is cancelled (then shuts down gracefully) or a part
// of it fails.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	logger := slog.New(telemetry.LogHandler(slog.NewJSONHandler(stdout, nil))).With("service", paymentevents.Service)
	cfg := configFrom(getenv)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if cfg.PprofAddr != "" {
		prof, err := profiling.Start(cfg.PprofAddr, logger)
		if err != nil {
			return err
		}
		defer prof.Close()
	}
	public, _ := hal.NewBase(cfg.PublicBaseURL)

	openCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	db, err := mysqldb.Open(openCtx, cfg.MySQLDSN)
	cancel()
	if err != nil {
		return err
	}
	defer db.Close()
	// Observability (internal/telemetry): /metrics, and traces when OTEL_* say where.
	tel, err := telemetry.New(ctx, telemetry.Config{Service: paymentevents.Service, Getenv: getenv, Logger: logger})
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.WithoutCancel(ctx))
	if err := tel.InstrumentDB(db, "payments"); err != nil {
		return err
	}
	if err := paymysql.Migrate(ctx, db, logger); err != nil {
		return err
	}

	bus, err := eventbus.New(tel.BusConfig(eventbus.Config{URL: cfg.AMQPURL, Service: paymentevents.Service, QueueType: cfg.QueueType, Logger: logger}))
	if err != nil {
		return err
	}
	if err := tel.ObserveBus(bus); err != nil {
		return err
	}
	if err := bus.Publishes(paymentevents.All...); err != nil {
		return err
	}
	relay, err := eventbus.NewRelay(db, bus, eventbus.RelayConfig{Logger: logger})
	if err != nil {
		return err
	}
	resources := httpapi.NewResources(public)
	store, err := paymysql.NewStore(db, resources)
	if err != nil {
		return err
	}
	var provider payment.Provider = simulator.Provider{}
	if f, _ := parseFaults(cfg.FaultInject); !f.none() { // checked by Validate
		logger.Warn("FAULT_INJECT is set: the payment provider fails on purpose (fault tests only)", "faults", cfg.FaultInject)
		provider = newFaultyProvider(provider, f)
	}
	if err := eventapi.New(store, provider, logger).Register(bus, db); err != nil {
		return err
	}

	api := httpapi.New(store, resources, logger)
	routes := api.Routes()
	if _, err := contracts.Mount(routes, api.Contract(bus), public.Join("payments", "v1")); err != nil {
		return err
	}
	routes.Handle("GET /health", httpkit.Health(map[string]httpkit.Check{
		"mysql":    db.PingContext,
		"rabbitmq": func(context.Context) error { return bus.Healthy() },
	}))
	srv := httpkit.NewServer(tel.Middleware(httpkit.Stack(routes, httpkit.Options{
		Logger:          logger,
		WithRequestID:   eventbus.WithCorrelationID,
		WithTraceparent: eventbus.WithTraceparent,
	})))
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	logger.Info("listening", "addr", ln.Addr().String())

	return runAll(ctx,
		func(ctx context.Context) error { return bus.Run(ctx) },
		func(ctx context.Context) error { return relay.Run(ctx) },
		func(ctx context.Context) error { return httpkit.Serve(ctx, srv, ln, cfg.ShutdownGrace) },
	)
}

// runAll runs every part until ctx is cancelled or one of them returns; then it cancels the others
// and waits for them. It returns the first error (nil after a shutdown caused by ctx).
func runAll(ctx context.Context, parts ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, part := range parts {
		wg.Go(func() {
			err := part(ctx)
			if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, http.ErrServerClosed) {
				once.Do(func() { first = err })
			}
			cancel()
		})
	}
	wg.Wait()
	return first
}
