package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Several instances of a service.
//
// An upstream may list several instances (Upstream.Instances). The gateway
// sends each request to the healthy instance with the fewest requests in
// flight, taking turns among equals (least-loaded, then round robin). An
// instance is taken out of rotation
//   - passively, at once, when connecting to it fails or its connection breaks
//     before it answers, for Config.EjectFor or until an active check finds
//     it healthy again, whichever comes later;
//   - actively, when its GET /health does not answer 200 within Config.HealthTimeout
//     (checked every Config.HealthInterval), until a check answers 200.
// When every instance is out of rotation, the gateway still tries them (least
// loaded first) rather than refuse the request.
//
// A request that fails before any byte of a response arrived is sent to
// another instance (once per other instance) when that cannot do a thing
// twice, and its body (if any) is at most maxRetryBody bytes with a known
// length (kept in memory to send it again):
//   - idempotent methods (GET, HEAD, OPTIONS, TRACE, PUT, DELETE);
//   - any method, POST and PATCH included, when the connection to the
//     instance could not be established: nothing was sent.
// A POST or PATCH that may have reached an instance is never sent again: the
// client gets the 502/503/504 problem and decides (with an Idempotency-Key
// where the service supports one). Timeouts are not retried: the instance may
// still be working on the request, and a retry would double the wait.

// maxRetryBody is the largest request body the gateway keeps in memory to
// retry an idempotent request; a larger one is sent once.
const maxRetryBody = 1 << 20

// instance is one instance of a service.
type instance struct {
	url      *url.URL
	inflight atomic.Int64
	mu       sync.Mutex
	healthy  bool      // the last active check answered 200 (true until a check fails)
	ejected  time.Time // passively ejected until then
}

func (in *instance) available(now time.Time) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.healthy && now.After(in.ejected)
}

func (in *instance) eject(d time.Duration) {
	in.mu.Lock()
	in.ejected = time.Now().Add(d)
	in.mu.Unlock()
}

func (in *instance) setHealthy(ok bool) (changed bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	changed = in.healthy != ok
	in.healthy = ok
	return changed
}

// pool is the instances of one upstream and the http.RoundTripper its
// reverse proxy sends through: it picks an instance, re-targets the request
// (which Rewrite aimed at the first instance) and retries as described above.
type pool struct {
	g         *Gateway
	dir       string
	instances []*instance
	primary   *url.URL // the URL Rewrite aims requests at: instances[0]
	next      atomic.Uint64
	transport http.RoundTripper
}

func newPool(g *Gateway, u Upstream, transport http.RoundTripper) *pool {
	p := &pool{g: g, dir: u.Dir, transport: transport}
	for _, iu := range u.instances() {
		p.instances = append(p.instances, &instance{url: iu, healthy: true})
	}
	p.primary = p.instances[0].url
	return p
}

// pick returns the available instance with the fewest requests in flight
// that is not in tried, starting the scan at the next turn (a request's
// first pick takes the turn); when none is available, the least-loaded
// untried one; nil when every one was tried.
func (p *pool) pick(tried []*instance) *instance {
	now := time.Now()
	var start int
	if len(tried) == 0 {
		start = int(p.next.Add(1))
	} else {
		start = int(p.next.Load())
	}
	var best, fallback *instance
	for i := range p.instances {
		in := p.instances[(start+i)%len(p.instances)]
		if containsInstance(tried, in) {
			continue
		}
		if in.available(now) {
			if best == nil || in.inflight.Load() < best.inflight.Load() {
				best = in
			}
		} else if fallback == nil || in.inflight.Load() < fallback.inflight.Load() {
			fallback = in
		}
	}
	if best != nil {
		return best
	}
	return fallback
}

func containsInstance(list []*instance, in *instance) bool {
	for _, e := range list {
		if e == in {
			return true
		}
	}
	return false
}

// RoundTrip implements http.RoundTripper.
func (p *pool) RoundTrip(req *http.Request) (*http.Response, error) {
	if len(p.instances) == 1 {
		return p.transport.RoundTrip(req)
	}
	// The body is kept in memory (up to maxRetryBody) so that it can be sent
	// again: the transport closes a request's body even when it could not
	// connect.
	canReplay := true
	if req.Body != nil && req.Body != http.NoBody {
		if req.ContentLength < 0 || req.ContentLength > maxRetryBody {
			canReplay = false
		} else {
			body, err := io.ReadAll(io.LimitReader(req.Body, maxRetryBody+1))
			req.Body.Close()
			if err != nil {
				return nil, err
			}
			if len(body) > maxRetryBody {
				return nil, errors.New("request body longer than its Content-Length")
			}
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			req.Body, _ = req.GetBody()
		}
	}
	var tried []*instance
	var lastErr error
	for {
		in := p.pick(tried)
		if in == nil {
			return nil, lastErr
		}
		tried = append(tried, in)
		out, err := p.retarget(req, in)
		if err != nil {
			return nil, err
		}
		in.inflight.Add(1)
		res, err := p.transport.RoundTrip(out)
		if err != nil {
			in.inflight.Add(-1)
		} else {
			res.Body = &countedBody{ReadCloser: res.Body, in: in}
			return res, nil
		}
		lastErr = err
		if req.Context().Err() != nil {
			return nil, err
		}
		if connectionBroken(err) {
			in.eject(p.g.cfg.EjectFor)
			p.g.cfg.Logger.WarnContext(req.Context(), "upstream instance ejected after a connection failure",
				"upstream", p.dir, "instance", in.url.Host, "for", p.g.cfg.EjectFor, "error", err)
		}
		if !canReplay || !(dialFailed(err) || (idempotent(req.Method) && !isTimeout(err))) {
			return nil, err
		}
		if len(tried) == len(p.instances) {
			return nil, err
		}
		p.g.cfg.Logger.InfoContext(req.Context(), "retrying on another instance", "upstream", p.dir,
			"method", req.Method, "failed_instance", in.url.Host, "error", err)
	}
}

// retarget returns a copy of req aimed at instance in instead of the primary.
func (p *pool) retarget(req *http.Request, in *instance) (*http.Request, error) {
	out := req.Clone(req.Context())
	if req.GetBody != nil && req.Body != nil && req.Body != http.NoBody {
		b, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		out.Body = b
	}
	if in.url == p.primary {
		return out, nil
	}
	// Rewrite joined the primary's base path: swap it for this instance's.
	rest := strings.TrimPrefix(out.URL.Path, strings.TrimSuffix(p.primary.Path, "/"))
	restRaw := ""
	if out.URL.RawPath != "" {
		restRaw = strings.TrimPrefix(out.URL.RawPath, strings.TrimSuffix(p.primary.EscapedPath(), "/"))
	}
	out.URL.Path, out.URL.RawPath = rest, restRaw
	(&httputil.ProxyRequest{Out: out}).SetURL(in.url)
	return out, nil
}

// idempotent reports whether sending a request of method twice has the
// effect of sending it once (RFC 9110, section 9.2.2).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// dialFailed reports whether err is a failure to connect: the request was
// not sent.
func dialFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// connectionBroken reports whether err says the instance is unreachable or
// dropped the connection (not a timeout, not a cancelled client).
func connectionBroken(err error) bool {
	if errors.Is(err, context.Canceled) || isTimeout(err) {
		return false
	}
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// countedBody ends an instance's in-flight request when its response body
// is closed.
type countedBody struct {
	io.ReadCloser
	in   *instance
	once sync.Once
}

func (b *countedBody) Close() error {
	b.once.Do(func() { b.in.inflight.Add(-1) })
	return b.ReadCloser.Close()
}

// checkInstances runs the active health checks every Config.HealthInterval
// until ctx ends: GET /health of every instance of every upstream with
// several instances.
func (g *Gateway) checkInstances(ctx context.Context, pools []*pool) {
	t := time.NewTicker(g.cfg.HealthInterval)
	defer t.Stop()
	for {
		var wg sync.WaitGroup
		for _, p := range pools {
			for _, in := range p.instances {
				wg.Go(func() {
					cctx, cancel := context.WithTimeout(ctx, g.cfg.HealthTimeout)
					defer cancel()
					err := g.checkURL(cctx, in.url)
					if ctx.Err() != nil {
						return
					}
					if in.setHealthy(err == nil) {
						if err != nil {
							g.cfg.Logger.Warn("upstream instance failed its health check: out of rotation", "upstream", p.dir, "instance", in.url.Host, "error", err)
						} else {
							g.cfg.Logger.Info("upstream instance healthy again: back in rotation", "upstream", p.dir, "instance", in.url.Host)
						}
					}
				})
			}
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkService asks the /health of every instance of u concurrently: nil
// when at least one answers 200 (the service is available through the
// gateway), else the failures of all.
func (g *Gateway) checkService(ctx context.Context, u Upstream) error {
	urls := u.instances()
	errs := make([]error, len(urls))
	var wg sync.WaitGroup
	for i, iu := range urls {
		wg.Go(func() { errs[i] = g.checkURL(ctx, iu) })
	}
	wg.Wait()
	var failed []string
	for i, err := range errs {
		if err == nil {
			return nil
		}
		if len(urls) == 1 {
			return err
		}
		failed = append(failed, urls[i].Host+": "+err.Error())
	}
	return fmt.Errorf("every instance failing (%s)", strings.Join(failed, "; "))
}

// ParseInstances parses the value of UPSTREAM_<DIR>: one base URL, or a
// comma-separated list of the base URLs of a service's instances.
func ParseInstances(s string) ([]*url.URL, error) {
	var out []*url.URL
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		u, err := url.Parse(part)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			return nil, fmt.Errorf("%q: want an absolute http(s) URL without a query, or a comma-separated list of them", part)
		}
		out = append(out, u)
	}
	return out, nil
}
