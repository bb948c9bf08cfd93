// Package edge is what the gateway does before proxying a request: CORS for
// browser applications, rate limits per client and class of route
// (package ratelimit), bounds on connections, and HTTPS. The gateway's main
// reads Config with ConfigFrom and calls New, Wrap and Listen.
package edge

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/services/gateway/ratelimit"
)

// Defaults of the environment (see the README, "Rate limits").
const (
	DefaultReads             = "1000/s burst 2000"
	DefaultWrites            = "200/s burst 400"
	DefaultSignIn            = "20/m burst 20"
	DefaultBackoff           = "1s"
	DefaultMaxConnsPerClient = 256
	DefaultMaxConns          = 10000
)

// Config is the edge's configuration, from the environment (ConfigFrom).
type Config struct {
	Classes           ratelimit.Classes // RATE_LIMIT_READS, RATE_LIMIT_WRITES, RATE_LIMIT_SIGNIN, RATE_LIMIT_SIGNIN_ROUTES
	Backoff           ratelimit.Backoff // RATE_LIMIT_BACKOFF: first penalty after a failed sign-in ("off": none)
	Instances         int               // GATEWAY_INSTANCES: gateway instances sharing the traffic; default 1
	TrustedProxies    []netip.Prefix    // TRUSTED_PROXIES: whose X-Forwarded-For is believed
	CORSOrigins       []string          // CORS_ALLOWED_ORIGINS
	MaxConnsPerClient int               // MAX_CONNS_PER_CLIENT: open connections per client address; default 256
	MaxConns          int               // MAX_CONNS: open connections in all; default 10000
	TLSCertFile       string            // TLS_CERT_FILE: serve HTTPS with this certificate (PEM, chain first)...
	TLSKeyFile        string            // TLS_KEY_FILE: ...and this key

	errs []error
}

// ConfigFrom reads the edge's environment, applying defaults; Validate
// reports what could not be read.
func ConfigFrom(getenv func(string) string) Config {
	c := Config{TLSCertFile: getenv("TLS_CERT_FILE"), TLSKeyFile: getenv("TLS_KEY_FILE")}
	class := func(key, name, def string) ratelimit.Class {
		v := getenv(key)
		if v == "" {
			v = def
		}
		cl, err := ratelimit.ParseClass(name, v)
		if err != nil {
			c.errs = append(c.errs, fmt.Errorf("%s: %w", key, err))
		}
		return cl
	}
	c.Classes.Reads = class("RATE_LIMIT_READS", ratelimit.ClassReads, DefaultReads)
	c.Classes.Writes = class("RATE_LIMIT_WRITES", ratelimit.ClassWrites, DefaultWrites)
	c.Classes.SignIn = class("RATE_LIMIT_SIGNIN", ratelimit.ClassSignIn, DefaultSignIn)
	routes := getenv("RATE_LIMIT_SIGNIN_ROUTES")
	if routes == "" {
		routes = ratelimit.DefaultSignInRoutes
	}
	var err error
	if c.Classes.SignInRoutes, err = ratelimit.ParseRoutes(routes); err != nil {
		c.errs = append(c.errs, fmt.Errorf("RATE_LIMIT_SIGNIN_ROUTES: %w", err))
	}
	backoff := getenv("RATE_LIMIT_BACKOFF")
	if backoff == "" {
		backoff = DefaultBackoff
	}
	if backoff != "off" {
		d, err := time.ParseDuration(backoff)
		if err != nil || d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("RATE_LIMIT_BACKOFF %q: want a duration such as 1s, or off", backoff))
		}
		c.Backoff.Base = d
	}
	c.Instances = c.positive(getenv, "GATEWAY_INSTANCES", 1)
	c.MaxConnsPerClient = c.positive(getenv, "MAX_CONNS_PER_CLIENT", DefaultMaxConnsPerClient)
	c.MaxConns = c.positive(getenv, "MAX_CONNS", DefaultMaxConns)
	if c.TrustedProxies, err = ratelimit.ParsePrefixes(getenv("TRUSTED_PROXIES")); err != nil {
		c.errs = append(c.errs, fmt.Errorf("TRUSTED_PROXIES: %w", err))
	}
	if c.CORSOrigins, err = ParseOrigins(getenv("CORS_ALLOWED_ORIGINS")); err != nil {
		c.errs = append(c.errs, fmt.Errorf("CORS_ALLOWED_ORIGINS: %w", err))
	}
	return c
}

func (c *Config) positive(getenv func(string) string, key string, def int) int {
	v := getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		c.errs = append(c.errs, fmt.Errorf("%s %q: want a positive integer", key, v))
		return def
	}
	return n
}

// Validate reports every setting that could not be read, naming its variable.
func (c Config) Validate() error {
	errs := append([]error(nil), c.errs...)
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("TLS_CERT_FILE and TLS_KEY_FILE go together"))
	}
	return errors.Join(errs...)
}

// Edge is the gateway's edge. It is safe for concurrent use.
type Edge struct {
	cfg     Config
	limiter *ratelimit.Limiter
	cors    *CORS
	tls     *tls.Config
}

// New returns the edge for cfg. key names the client a request counts
// against; nil counts per client address (ratelimit.AddrKey with the
// trusted proxies). With authentication on, pass
// ratelimit.SubjectKey(subjectOfRequest, edge.AddrKey(cfg)). A certificate
// that cannot be loaded is an error.
func New(cfg Config, key ratelimit.KeyFunc) (*Edge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if key == nil {
		key = AddrKey(cfg)
	}
	classes := cfg.Classes
	lim, err := ratelimit.New(ratelimit.Config{Classes: &classes, Key: key, Instances: cfg.Instances, Backoff: cfg.Backoff})
	if err != nil {
		return nil, err
	}
	e := &Edge{cfg: cfg, limiter: lim, cors: NewCORS(cfg.CORSOrigins)}
	if cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS_CERT_FILE/TLS_KEY_FILE: %w", err)
		}
		e.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	}
	return e, nil
}

// AddrKey is the KeyFunc counting per client address with cfg's trusted proxies.
func AddrKey(cfg Config) ratelimit.KeyFunc { return ratelimit.AddrKey(cfg.TrustedProxies) }

// Wrap returns next behind CORS, then the rate limits: a preflight is
// answered before any limit, and a 429 carries the CORS headers so that
// a browser application can read it.
func (e *Edge) Wrap(next http.Handler) http.Handler {
	return e.cors.Wrap(e.limiter.Wrap(next))
}

// WrapIdentified is Wrap with identify between CORS and the rate limits:
// the seam for authentication. identify should verify the credentials a
// request carries and put the principal in its context without refusing
// anything (refusing is for a later middleware), so that the limiter,
// created with key = ratelimit.SubjectKey(subjectFromContext, AddrKey(cfg)),
// counts per subject, and a flood of bad tokens is still limited per
// address.
func (e *Edge) WrapIdentified(identify func(http.Handler) http.Handler, next http.Handler) http.Handler {
	return e.cors.Wrap(identify(e.limiter.Wrap(next)))
}

// TLS reports whether the edge serves HTTPS.
func (e *Edge) TLS() bool { return e.tls != nil }

// Listen listens on addr, bounded by the connection limits (trusted
// proxies count only towards the total), with TLS when configured.
func (e *Edge) Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	ln = httpkit.LimitConns(ln, httpkit.ConnLimits{PerClient: e.cfg.MaxConnsPerClient, Total: e.cfg.MaxConns, Exempt: e.cfg.TrustedProxies})
	if e.tls != nil {
		ln = tls.NewListener(ln, e.tls)
	}
	return ln, nil
}

// Summary describes the configuration for the start-up log line.
func (e *Edge) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "reads %s, writes %s, sign-in %s", e.cfg.Classes.Reads, e.cfg.Classes.Writes, e.cfg.Classes.SignIn)
	if e.cfg.Instances > 1 {
		fmt.Fprintf(&b, " (each of %d instances enforces its share)", e.cfg.Instances)
	}
	fmt.Fprintf(&b, "; %d CORS origins; https %v", len(e.cfg.CORSOrigins), e.tls != nil)
	return b.String()
}
