// Package proxy is the API gateway of Sagittarius: the single entry point
// for API consumers.
//
//	GET /                  HAL root linking every service's entry point (/<dir>/v1)
//	GET /health            200 when every upstream's /health answers 200, else a 503 problem
//	ANY /<dir>/<path>      proxied to UPSTREAM_<DIR>/<path> (the prefix is stripped)
//	anything else          404 problem
//
// The gateway keeps links pointing at itself: services build their links
// from PUBLIC_BASE_URL (the gateway), and a Location or Content-Location
// header that still names an upstream (absolute, or a path relative to the
// upstream) is rewritten to the gateway. X-Request-Id and traceparent are
// added when absent (httpkit middleware, applied by main). An upstream that
// is down gives a 503 problem, one that times out a 504, any other transport
// failure a 502.

package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/problem"
)

// Upstream is one service behind the gateway.
type Upstream struct {
	// Dir is the path prefix and link relation, e.g. "orders" (services/<dir>).
	Dir string
	// Name is the service name, e.g. "sales.orders" (used as link title).
	Name string
	// URL is the service's base URL, e.g. http://127.0.0.1:8083.
	URL *url.URL
}

// Config configures the gateway.
type Config struct {
	// Base is the gateway's public base URL; every link of the root uses it.
	Base hal.Base
	// Upstreams in the order the root lists them. Dirs must be unique,
	// lower-case words with dashes.
	Upstreams []Upstream
	// DialTimeout bounds connecting to an upstream. Default 2s.
	DialTimeout time.Duration
	// ResponseTimeout bounds waiting for an upstream's response headers
	// (then 504). Default 30s.
	ResponseTimeout time.Duration
	// Logger receives upstream failures. Default slog.Default().
	Logger *slog.Logger
	// Docs, when set, serves the developer portal at /docs and /docs/...
	// (internal/portal); the root links it (rel docs).
	Docs http.Handler
}

// Gateway is the http.Handler of the gateway. It is safe for concurrent use.
type Gateway struct {
	cfg     Config
	proxies map[string]*httputil.ReverseProxy
	client  *http.Client            // for health checks
	own     map[string]http.Handler // the gateway's own routes (Table) by path
	buffers *bufferPool             // shared by the proxies
}

// New validates cfg and returns the gateway.
func New(cfg Config) (*Gateway, error) {
	if cfg.Base.String() == "" {
		return nil, errors.New("proxy: Config.Base is required")
	}
	if len(cfg.Upstreams) == 0 {
		return nil, errors.New("proxy: no upstreams")
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 2 * time.Second
	}
	if cfg.ResponseTimeout == 0 {
		cfg.ResponseTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	// Every request the gateway proxies needs an upstream connection: keep
	// as many idle ones per upstream as there may be concurrent requests, or
	// each request beyond the idle limit closes a connection it just used
	// and the next one dials again (net/http keeps 2 per host by default).
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          0, // no limit across upstreams; MaxIdleConnsPerHost bounds each
		MaxIdleConnsPerHost:   maxIdlePerUpstream,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.ResponseTimeout,
	}
	g := &Gateway{cfg: cfg, proxies: map[string]*httputil.ReverseProxy{},
		client: &http.Client{Transport: transport, Timeout: 3 * time.Second}, buffers: newBufferPool()}
	for _, u := range cfg.Upstreams {
		if !validDir(u.Dir) {
			return nil, fmt.Errorf("proxy: upstream dir %q: want lower-case words with dashes", u.Dir)
		}
		if _, dup := g.proxies[u.Dir]; dup {
			return nil, fmt.Errorf("proxy: upstream dir %q listed twice", u.Dir)
		}
		if u.URL == nil || (u.URL.Scheme != "http" && u.URL.Scheme != "https") || u.URL.Host == "" {
			return nil, fmt.Errorf("proxy: upstream %s: want an absolute http(s) URL", u.Dir)
		}
		g.proxies[u.Dir] = g.newProxy(u, transport)
	}
	g.own = map[string]http.Handler{}
	for _, rt := range g.Table() {
		g.own[rt.Path] = rt.Handler // root and health check the method themselves
	}
	return g, nil
}

// Table is the route table of the gateway's own routes (not the proxied
// APIs, which each service documents): what ServeHTTP serves and what
// contracts/openapi/gateway.yaml is generated from.
func (g *Gateway) Table() []contracts.Route {
	return []contracts.Route{
		{Method: http.MethodGet, Path: "/", Handler: g.root, Auth: auth.Anyone(), ID: "getRoot", Tag: "root",
			Summary:     "The API's entry point: links to every service's API (rel = its prefix) and to the developer portal",
			Description: "Every service's API is proxied under its prefix: /customers, /catalog, /orders, /inventory, /payments, /shipping; see their own manifests. An upstream that is down gives 503, one that times out 504, any other transport failure 502 (problem+json).",
			Responses: []contracts.Response{{Status: http.StatusOK, Body: Root{}, Example: Root{
				Name: "Sagittarius", Services: []string{"crm.customers", "sales.orders"},
				Links: hal.Links{
					"self":      hal.To("http://127.0.0.1:8080/"),
					"customers": hal.One(hal.Link{Href: "http://127.0.0.1:8080/customers/v1", Title: "crm.customers"}),
					"orders":    hal.One(hal.Link{Href: "http://127.0.0.1:8080/orders/v1", Title: "sales.orders"}),
					"docs":      hal.One(hal.Link{Href: "http://127.0.0.1:8080/docs/", Type: "text/html", Title: "developer portal"}),
				}}}}},
		{Method: http.MethodGet, Path: "/health", Handler: g.health, Auth: auth.Anyone(), ID: "getHealth", Tag: "health",
			Summary:   "200 when every upstream's /health answers 200, else 503 naming the failing ones",
			Responses: []contracts.Response{{Status: http.StatusOK, Body: Health{}, ContentType: "application/json"}},
			Errors:    []int{http.StatusServiceUnavailable}},
	}
}

// Contract describes the gateway for its OpenAPI manifest (it has no bus).
func (g *Gateway) Contract() contracts.Service {
	return contracts.Service{Dir: "gateway", Name: "gateway", Title: "API gateway",
		Description: "The single entry point for API consumers: the HAL root, the aggregated health check, and every service's API under its prefix. It adds X-Request-Id and traceparent and keeps every link pointing at itself.",
		Routes:      g.Table(), Prefix: "/", OmitContractRoutes: true}
}

// Root is the document at /.
type Root struct {
	Name     string    `json:"name"`
	Services []string  `json:"services"`
	Links    hal.Links `json:"_links"`
}

// Health is the answer of /health when every upstream is healthy.
type Health struct {
	Status    string            `json:"status" enum:"ok"`
	Upstreams map[string]string `json:"upstreams"`
}

func validDir(d string) bool {
	if d == "" || d[0] == '-' || d[len(d)-1] == '-' {
		return false
	}
	for _, r := range d {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

// ServeHTTP routes r to the root, the health check or an upstream.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, ok := g.own[r.URL.Path]; ok {
		h.ServeHTTP(w, r)
		return
	}
	if g.cfg.Docs != nil && (r.URL.Path == "/docs" || strings.HasPrefix(r.URL.Path, "/docs/")) {
		g.cfg.Docs.ServeHTTP(w, r)
		return
	}
	dir, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if p, ok := g.proxies[dir]; ok {
		p.ServeHTTP(w, r)
		return
	}
	problem.Write(w, r, problem.NotFound("no service behind this path; start from the root document at /"))
}

// root is GET /: links to every service's entry point.
func (g *Gateway) root(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		problem.Write(w, r, problem.MethodNotAllowed(r.Method))
		return
	}
	links := hal.Links{}
	links.Set("self", g.cfg.Base.String()+"/")
	names := make([]string, 0, len(g.cfg.Upstreams))
	for _, u := range g.cfg.Upstreams {
		links.SetLink(u.Dir, hal.Link{Href: g.cfg.Base.Href(u.Dir, "v1"), Title: u.Name})
		names = append(names, u.Name)
	}
	if g.cfg.Docs != nil {
		links.SetLink("docs", hal.Link{Href: g.cfg.Base.Href("docs") + "/", Type: "text/html", Title: "developer portal: API reference, event catalog, choreography map"})
	}
	hal.Write(w, r, http.StatusOK, Root{"Sagittarius", names, links})
}

// health asks every upstream's /health concurrently.
func (g *Gateway) health(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		problem.Write(w, r, problem.MethodNotAllowed(r.Method))
		return
	}
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		results = map[string]string{}
		failed  problem.Fields
	)
	for _, u := range g.cfg.Upstreams {
		wg.Go(func() {
			err := g.checkUpstream(r.Context(), u)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				results[u.Dir] = "failing"
				failed.Add(u.Dir, err.Error())
				return
			}
			results[u.Dir] = "ok"
		})
	}
	wg.Wait()
	if len(failed) > 0 {
		sort.Slice(failed, func(i, j int) bool { return failed[i].Field < failed[j].Field })
		p := problem.New(http.StatusServiceUnavailable, "an upstream service is unavailable")
		p.Errors = failed
		problem.Write(w, r, p)
		return
	}
	body, _ := json.Marshal(map[string]any{"status": "ok", "upstreams": results})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(body, '\n'))
}

func (g *Gateway) checkUpstream(ctx context.Context, u Upstream) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.URL.JoinPath("health").String(), nil)
	if err != nil {
		return err
	}
	res, err := g.client.Do(req)
	if err != nil {
		return errors.New("unreachable")
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("health answered %d", res.StatusCode)
	}
	return nil
}

// maxIdlePerUpstream is how many idle connections the gateway keeps to each
// upstream: above any realistic number of concurrent requests to one service.
const maxIdlePerUpstream = 512

// bufferPool holds the 32 KiB buffers the proxies copy response bodies
// through, reused instead of allocated for every request
// (httputil.BufferPool).
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (b *bufferPool) Get() []byte  { return *b.p.Get().(*[]byte) }
func (b *bufferPool) Put(p []byte) { b.p.Put(&p) }

// newProxy returns the reverse proxy of one upstream: /<dir>/rest -> upstream/rest.
func (g *Gateway) newProxy(u Upstream, transport http.RoundTripper) *httputil.ReverseProxy {
	prefix := "/" + u.Dir
	upstreamOrigin := u.URL.Scheme + "://" + u.URL.Host
	return &httputil.ReverseProxy{
		Transport:  transport,
		BufferPool: g.buffers,
		Rewrite: func(pr *httputil.ProxyRequest) {
			// Strip the prefix, then let SetURL join the upstream's base path.
			out := pr.Out.URL
			out.Path = strings.TrimPrefix(pr.In.URL.Path, prefix)
			out.RawPath = strings.TrimPrefix(pr.In.URL.RawPath, prefix)
			if out.Path == "" {
				out.Path, out.RawPath = "/", ""
			}
			pr.SetURL(u.URL)
			pr.SetXForwarded()
			pr.Out.Header.Set("X-Forwarded-Prefix", prefix)
		},
		ModifyResponse: func(res *http.Response) error {
			// The gateway's own X-Request-Id is already on the answer (the
			// upstream echoes the same id): keep one copy of the header.
			res.Header.Del(httpkit.HeaderRequestID)
			for _, h := range []string{"Location", "Content-Location"} {
				if v := res.Header.Get(h); v != "" {
					res.Header.Set(h, g.rewriteLink(v, prefix, upstreamOrigin))
				}
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			status, detail := classify(err)
			if r.Context().Err() != nil {
				// The client went away; nobody reads the answer.
				return
			}
			g.cfg.Logger.WarnContext(r.Context(), "upstream failed", "upstream", u.Dir, "method", r.Method, "path", r.URL.Path,
				"status", status, "error", err, "request_id", httpkit.RequestIDFrom(r.Context()))
			p := problem.New(status, fmt.Sprintf("%s (%s): %s", u.Dir, u.Name, detail))
			problem.Write(w, r, p)
		},
	}
}

// rewriteLink makes a link from an upstream point at the gateway: an
// absolute URL on the upstream's origin, or an absolute path, becomes the
// gateway base + prefix + path. Any other value (already the gateway, or
// another site) is returned unchanged.
func (g *Gateway) rewriteLink(v, prefix, upstreamOrigin string) string {
	if rest, ok := strings.CutPrefix(v, upstreamOrigin); ok && (rest == "" || rest[0] == '/' || rest[0] == '?') {
		return g.cfg.Base.String() + prefix + rest
	}
	if strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "//") {
		return g.cfg.Base.String() + prefix + v
	}
	return v
}

// classify maps a transport error to 413 (the client's request body passed
// the gateway's limit while it was being sent, e.g. chunked without a
// Content-Length: the client's fault, not the upstream's), 503 (upstream down:
// connection refused or unknown host), 504 (timeout) or 502 (anything else).
func classify(err error) (int, string) {
	var ne net.Error
	var dnsErr *net.DNSError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body exceeds %d bytes", tooBig.Limit)
	case errors.Is(err, syscall.ECONNREFUSED), errors.As(err, &dnsErr):
		return http.StatusServiceUnavailable, "the service is down"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return http.StatusGatewayTimeout, "the service did not answer in time"
	default:
		return http.StatusBadGateway, "the service gave no valid answer"
	}
}
