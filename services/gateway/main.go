// Command gateway runs the API gateway of Sagittarius on :8080: the HAL root
// linking every service, and a reverse proxy from /<dir>/... to each service.
// It has no queue and no database.
//
// Environment: HTTP_ADDR (default 127.0.0.1:8080), PUBLIC_BASE_URL (default
// http://127.0.0.1:8080) and UPSTREAM_<DIR> for each service (default
// http://127.0.0.1:<port of the service>), e.g. UPSTREAM_ORDERS; the edge's
// variables (rate limits, CORS, connection bounds, TLS_CERT_FILE and
// TLS_KEY_FILE for HTTPS: package edge, README "The edge"). It stops
// gracefully on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	manifests "github.com/sagittarius-a/sagittarius/contracts"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/portal"
	"github.com/sagittarius-a/sagittarius/internal/profiling"
	"github.com/sagittarius-a/sagittarius/services/gateway/edge"
	"github.com/sagittarius-a/sagittarius/services/gateway/proxy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

// service is one service behind the gateway, with its default port.
type service struct{ dir, name, port string }

// services lists the platform's services in the order the root shows them
// (the same table as scripts/services.conf).
var services = []service{
	{"customers", "crm.customers", "8081"},
	{"catalog", "catalog.products", "8082"},
	{"orders", "sales.orders", "8083"},
	{"inventory", "logistics.inventory", "8084"},
	{"payments", "finance.payments", "8085"},
	{"shipping", "logistics.shipments", "8086"},
}

// Config is the gateway's configuration, read from the environment by configFrom.
type Config struct {
	HTTPAddr      string            // HTTP_ADDR, default 127.0.0.1:8080
	PublicBaseURL string            // PUBLIC_BASE_URL, default http://127.0.0.1:8080
	Upstreams     map[string]string // dir -> UPSTREAM_<DIR>, default http://127.0.0.1:<port>
	PprofAddr     string            // PPROF_ADDR: if set, Go profiles (net/http/pprof) on this loopback address; off by default
	ShutdownGrace time.Duration     // in-flight requests at shutdown: 10s
}

func configFrom(getenv func(string) string) Config {
	c := Config{
		HTTPAddr:      getenv("HTTP_ADDR"),
		PprofAddr:     getenv("PPROF_ADDR"),
		PublicBaseURL: getenv("PUBLIC_BASE_URL"),
		Upstreams:     map[string]string{},
		ShutdownGrace: 10 * time.Second,
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8080"
	}
	if c.PublicBaseURL == "" {
		c.PublicBaseURL = "http://127.0.0.1:8080"
	}
	for _, s := range services {
		v := getenv("UPSTREAM_" + strings.ToUpper(s.dir))
		if v == "" {
			v = "http://127.0.0.1:" + s.port
		}
		c.Upstreams[s.dir] = v
	}
	return c
}

// Validate reports every invalid setting.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("HTTP_ADDR %q: %w", c.HTTPAddr, err))
	}
	if _, err := hal.NewBase(c.PublicBaseURL); err != nil {
		errs = append(errs, fmt.Errorf("PUBLIC_BASE_URL: %w", err))
	}
	for _, s := range services {
		u, err := url.Parse(c.Upstreams[s.dir])
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			errs = append(errs, fmt.Errorf("UPSTREAM_%s %q: want an absolute http(s) URL", strings.ToUpper(s.dir), c.Upstreams[s.dir]))
		}
	}
	return errors.Join(errs...)
}

// run serves the gateway until ctx is cancelled, then shuts down gracefully.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg := configFrom(getenv)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	logger := slog.New(slog.NewJSONHandler(stdout, nil)).With("service", "gateway")
	if cfg.PprofAddr != "" {
		prof, err := profiling.Start(cfg.PprofAddr, logger)
		if err != nil {
			return err
		}
		defer prof.Close()
	}
	base, _ := hal.NewBase(cfg.PublicBaseURL) // checked by Validate
	docs, err := portal.New(manifests.FS, "/docs")
	if err != nil {
		return err
	}
	pcfg := proxy.Config{Base: base, Logger: logger, Docs: docs}
	for _, s := range services {
		u, _ := url.Parse(cfg.Upstreams[s.dir]) // checked by Validate
		pcfg.Upstreams = append(pcfg.Upstreams, proxy.Upstream{Dir: s.dir, Name: s.name, URL: u})
	}
	gw, err := proxy.New(pcfg)
	if err != nil {
		return err
	}
	// The edge (package edge): CORS, rate limits, connection bounds, HTTPS.
	edgeCfg := edge.ConfigFrom(getenv)
	front, err := edge.New(edgeCfg, nil)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	handler := httpkit.Stack(front.Wrap(gw), httpkit.Options{Logger: logger})
	ln, err := front.Listen(cfg.HTTPAddr)
	if err != nil {
		return err
	}
	logger.Info("listening", "addr", ln.Addr().String(), "public_base_url", cfg.PublicBaseURL, "edge", front.Summary())
	err = httpkit.Serve(ctx, httpkit.NewServer(handler), ln, cfg.ShutdownGrace)
	logger.Info("stopped")
	return err
}
