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
// failure a 502. An upstream may have several instances: see balancer.go for
// how the gateway picks one, takes failing ones out of rotation and retries.

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
	"path"
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
	// Instances, when set, are the base URLs of every instance of the
	// service (URL is then ignored): the gateway balances across them, takes
	// failing ones out of rotation and retries what is safe to retry on
	// another (see balancer.go). ParseInstances reads them from
	// UPSTREAM_<DIR>.
	Instances []*url.URL
}

// instances returns Instances, or URL alone.
func (u Upstream) instances() []*url.URL {
	if len(u.Instances) > 0 {
		return u.Instances
	}
	return []*url.URL{u.URL}
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
	// HealthInterval is how often the gateway checks GET /health of each
	// instance of an upstream with several instances. Default 5s.
	HealthInterval time.Duration
	// HealthTimeout bounds one such check. Default 2s.
	HealthTimeout time.Duration
	// EjectFor is how long an instance whose connection failed stays out of
	// rotation (at least: an active check must find it healthy too). Default 10s.
	EjectFor time.Duration
	// Logger receives upstream failures. Default slog.Default().
	Logger *slog.Logger
	// Docs, when set, serves the developer portal at /docs and /docs/...
	// (internal/portal); the root links it (rel docs).
	Docs http.Handler
	// WrapTransport, when set, wraps the transport to each upstream (named
	// by its dir): metrics and client spans (telemetry.T.UpstreamTransport).
	WrapTransport func(dir string, rt http.RoundTripper) http.RoundTripper
	// Console, when set, serves the operations console at /console and /console/...
	Console http.Handler
}

// Gateway is the http.Handler of the gateway. It is safe for concurrent use.
type Gateway struct {
	cfg     Config
	proxies map[string]*httputil.ReverseProxy
	client  *http.Client            // for health checks
	own     map[string]http.Handler // the gateway's own routes (Table) by path
	buffers *bufferPool             // shared by the proxies
	stop    context.CancelFunc      // stops the active health checks
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
	if cfg.HealthInterval == 0 {
		cfg.HealthInterval = 5 * time.Second
	}
	if cfg.HealthTimeout == 0 {
		cfg.HealthTimeout = 2 * time.Second
	}
	if cfg.EjectFor == 0 {
		cfg.EjectFor = 10 * time.Second
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
		// The client's own Accept-Encoding passes through; the gateway never
		// asks for gzip itself only to decompress the answer again.
		DisableCompression: true,
	}
	g := &Gateway{cfg: cfg, proxies: map[string]*httputil.ReverseProxy{},
		client: &http.Client{Transport: transport, Timeout: 3 * time.Second}, buffers: newBufferPool()}
	var pools []*pool // upstreams with several instances
	for _, u := range cfg.Upstreams {
		if !validDir(u.Dir) {
			return nil, fmt.Errorf("proxy: upstream dir %q: want lower-case words with dashes", u.Dir)
		}
		if _, dup := g.proxies[u.Dir]; dup {
			return nil, fmt.Errorf("proxy: upstream dir %q listed twice", u.Dir)
		}
		for _, iu := range u.instances() {
			if iu == nil || (iu.Scheme != "http" && iu.Scheme != "https") || iu.Host == "" {
				return nil, fmt.Errorf("proxy: upstream %s: want an absolute http(s) URL", u.Dir)
			}
		}
		var rt http.RoundTripper = transport
		if cfg.WrapTransport != nil {
			rt = cfg.WrapTransport(u.Dir, transport)
		}
		p := newPool(g, u, rt)
		if len(p.instances) > 1 {
			pools = append(pools, p)
		}
		g.proxies[u.Dir] = g.newProxy(u, p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.stop = cancel
	if len(pools) > 0 {
		go g.checkInstances(ctx, pools)
	}
	g.own = map[string]http.Handler{}
	for _, rt := range g.Table() {
		g.own[rt.Path] = rt.Handler // root and health check the method themselves
	}
	return g, nil
}

// Close stops the active health checks of upstream instances (started by
// New when an upstream has several). The gateway keeps serving.
func (g *Gateway) Close() { g.stop() }

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
		Description: "The single entry point for API consumers: the HAL root, the aggregated health check, and every service's API under its prefix. It adds X-Request-Id and traceparent and keeps every link pointing at itself. On any path, before any service: 429 problem+json with Retry-After, RateLimit and RateLimit-Policy (draft-ietf-httpapi-ratelimit-headers-11) when a client exceeds its rate limit, every allowed answer carrying RateLimit and RateLimit-Policy too; 431 problem+json for a request line and headers over 16 KiB; CORS for the configured origins.",
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
// It records the route for metrics (httpkit.SetRoute): the path of its own
// routes, /docs/* for the portal, /<dir>/* for a proxied request. A
// service's /metrics is not proxied: /<dir>/metrics is a 404, since metrics
// are for the monitoring system on each service's own port, not for API
// consumers.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, ok := g.own[r.URL.Path]; ok {
		httpkit.SetRoute(r, r.URL.Path)
		h.ServeHTTP(w, r)
		return
	}
	if g.cfg.Docs != nil && (r.URL.Path == "/docs" || strings.HasPrefix(r.URL.Path, "/docs/")) {
		httpkit.SetRoute(r, "/docs/*")
		g.cfg.Docs.ServeHTTP(w, r)
		return
	}
	if g.cfg.Console != nil && (r.URL.Path == "/console" || strings.HasPrefix(r.URL.Path, "/console/")) {
		g.cfg.Console.ServeHTTP(w, r)
		return
	}
	dir, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if p, ok := g.proxies[dir]; ok {
		if internalPath(rest) {
			problem.Write(w, r, problem.NotFound("no resource at this path"))
			return
		}
		httpkit.SetRoute(r, "/"+dir+"/*")
		p.ServeHTTP(w, r)
		return
	}
	problem.Write(w, r, problem.NotFound("no service behind this path; start from the root document at /"))
}

// internalPath reports whether rest, a path below /<dir>/, names a service's
// metrics (/metrics, /metrics/..., however written: //metrics, /./metrics).
func internalPath(rest string) bool {
	clean := path.Clean("/" + rest)
	return clean == "/metrics" || strings.HasPrefix(clean, "/metrics/")
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
			err := g.checkService(r.Context(), u)
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

// checkURL asks GET /health of the instance at base: nil for a 200.
func (g *Gateway) checkURL(ctx context.Context, base *url.URL) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.JoinPath("health").String(), nil)
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
	return &bufferPool{sync.Pool{New: func() any { return new([32 << 10]byte) }}}
}

// Get and Put pass array pointers through the pool: putting back a slice
// header would allocate one per request.
func (b *bufferPool) Get() []byte { return b.p.Get().(*[32 << 10]byte)[:] }
func (b *bufferPool) Put(p []byte) {
	if len(p) == 32<<10 {
		b.p.Put((*[32 << 10]byte)(p))
	}
}

// newProxy returns the reverse proxy of one upstream: /<dir>/rest ->
// upstream/rest. Rewrite aims at the first instance; the pool (transport)
// picks the instance that serves the request.
func (g *Gateway) newProxy(u Upstream, transport *pool) *httputil.ReverseProxy {
	prefix := "/" + u.Dir
	primary := transport.primary
	var origins []string
	for _, iu := range u.instances() {
		origins = append(origins, iu.Scheme+"://"+iu.Host)
	}
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
			pr.SetURL(primary)
			pr.SetXForwarded()
			pr.Out.Header.Set("X-Forwarded-Prefix", prefix)
		},
		ModifyResponse: func(res *http.Response) error {
			// The gateway's own X-Request-Id is already on the answer (the
			// upstream echoes the same id): keep one copy of the header.
			res.Header.Del(httpkit.HeaderRequestID)
			for _, h := range []string{"Location", "Content-Location"} {
				if v := res.Header.Get(h); v != "" {
					res.Header.Set(h, g.rewriteLink(v, prefix, origins))
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
// absolute URL on the origin of one of the upstream's instances, or an
// absolute path, becomes the gateway base + prefix + path. Any other value
// (already the gateway, or another site) is returned unchanged.
func (g *Gateway) rewriteLink(v, prefix string, upstreamOrigins []string) string {
	for _, o := range upstreamOrigins {
		if rest, ok := strings.CutPrefix(v, o); ok && (rest == "" || rest[0] == '/' || rest[0] == '?') {
			return g.cfg.Base.String() + prefix + rest
		}
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
