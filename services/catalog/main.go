// Command catalog runs catalog.products: the catalog API (add, read, list,
// change price and details, retire under /v1/products). It consumes no
// events; it publishes product_added, product_updated and product_retired
// through its outbox, so it still runs the bus (publishing) and the relay.
//
// Environment: HTTP_ADDR, AMQP_URL, MYSQL_DSN, PUBLIC_BASE_URL, QUEUE_TYPE
// (see Config). It stops gracefully on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
	"github.com/sagittarius-a/sagittarius/internal/profiling"
	"github.com/sagittarius-a/sagittarius/internal/telemetry"
	"github.com/sagittarius-a/sagittarius/services/catalog/httpapi"
	"github.com/sagittarius-a/sagittarius/services/catalog/mysql"
	"github.com/sagittarius-a/sagittarius/services/catalog/productevents"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "catalog:", err)
		os.Exit(1)
	}
}

// Config is the service's configuration, read from the environment by
// configFrom.
type Config struct {
	HTTPAddr      string             // HTTP_ADDR, default 127.0.0.1:8082
	AMQPURL       string             // AMQP_URL, required
	MySQLDSN      string             // MYSQL_DSN, required
	PublicBaseURL string             // PUBLIC_BASE_URL, default http://127.0.0.1:8080 (the gateway)
	QueueType     eventbus.QueueType // QUEUE_TYPE, classic (default) or quorum
	PprofAddr     string             // PPROF_ADDR: if set, Go profiles (net/http/pprof) on this loopback address; off by default
	ShutdownGrace time.Duration      // how long in-flight requests may take at shutdown: 10s
}

// configFrom reads the configuration from getenv, applying defaults.
func configFrom(getenv func(string) string) Config {
	c := Config{
		HTTPAddr:      getenv("HTTP_ADDR"),
		PprofAddr:     getenv("PPROF_ADDR"),
		AMQPURL:       getenv("AMQP_URL"),
		MySQLDSN:      getenv("MYSQL_DSN"),
		PublicBaseURL: getenv("PUBLIC_BASE_URL"),
		QueueType:     eventbus.QueueType(getenv("QUEUE_TYPE")),
		ShutdownGrace: 10 * time.Second,
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8082"
	}
	if c.PublicBaseURL == "" {
		c.PublicBaseURL = "http://127.0.0.1:8080"
	}
	if c.QueueType == "" {
		c.QueueType = eventbus.QueueClassic
	}
	return c
}

// Validate reports every missing or invalid setting.
func (c Config) Validate() error {
	var errs []error
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
	if c.QueueType != eventbus.QueueClassic && c.QueueType != eventbus.QueueQuorum {
		errs = append(errs, fmt.Errorf("QUEUE_TYPE %q: want classic or quorum", c.QueueType))
	}
	return errors.Join(errs...)
}

// run wires the service and serves until ctx is cancelled, then drains: the
// HTTP server stops taking requests, the relay and the bus stop. It logs JSON
// lines to stdout.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg := configFrom(getenv)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	logger := slog.New(telemetry.LogHandler(slog.NewJSONHandler(stdout, nil))).With("service", productevents.Service)
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
	// Observability (internal/telemetry): /metrics, and traces when OTEL_* say where.
	tel, err := telemetry.New(ctx, telemetry.Config{Service: productevents.Service, Getenv: getenv, Logger: logger})
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.WithoutCancel(ctx))
	if err := tel.InstrumentDB(db, "catalog"); err != nil {
		return err
	}
	if err := mysql.Migrate(ctx, db, logger); err != nil {
		return err
	}

	bus, err := eventbus.New(tel.BusConfig(eventbus.Config{URL: cfg.AMQPURL, Service: productevents.Service, QueueType: cfg.QueueType, Logger: logger}))
	if err != nil {
		return err
	}
	if err := tel.ObserveBus(bus); err != nil {
		return err
	}
	if err := bus.Publishes(productevents.All...); err != nil {
		return err
	}
	relay, err := eventbus.NewRelay(db, bus, eventbus.RelayConfig{Logger: logger})
	if err != nil {
		return err
	}
	base, _ := hal.NewBase(cfg.PublicBaseURL) // checked by Validate
	render := httpapi.NewRenderer(base)
	store, err := mysql.New(db, render.Product, relay.Notify)
	if err != nil {
		return err
	}

	health := httpkit.Health(map[string]httpkit.Check{
		"mysql":    func(ctx context.Context) error { return db.PingContext(ctx) },
		"rabbitmq": func(context.Context) error { return bus.Healthy() },
	})
	api := httpapi.New(store, render, logger)
	routes := api.Routes(health)
	if _, err := contracts.Mount(routes, api.Contract(bus), base.Join("catalog", "v1")); err != nil {
		return err
	}
	handler := tel.Middleware(httpkit.Stack(routes, httpkit.Options{
		Logger:          logger,
		WithRequestID:   eventbus.WithCorrelationID,
		WithTraceparent: eventbus.WithTraceparent,
	}))
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	logger.Info("listening", "addr", ln.Addr().String())

	// The bus, the relay and the HTTP server run until ctx is done; the first
	// to fail stops the others.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	start := func(name string, fn func(context.Context) error) {
		wg.Go(func() {
			if err := fn(ctx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				mu.Unlock()
			}
			cancel()
		})
	}
	start("bus", bus.Run)
	start("relay", relay.Run)
	start("http", func(ctx context.Context) error {
		return httpkit.Serve(ctx, httpkit.NewServer(handler), ln, cfg.ShutdownGrace)
	})
	wg.Wait()
	logger.Info("stopped")
	return errors.Join(errs...)
}
