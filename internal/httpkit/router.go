// Package httpkit holds the HTTP plumbing every service shares: a router that
// answers unknown paths and methods with problem+json (404, 405 + Allow), the
// middleware stack (request id, logging, recovery, body limit), strict JSON
// decoding, ETag/If-Match helpers, the health handler and a server runner
// with graceful shutdown.
package httpkit

import (
	"net/http"

	"github.com/sagittarius-a/sagittarius/internal/problem"
)

// Router is a net/http ServeMux (Go 1.22 patterns: "GET /v1/customers/{id}")
// that answers a path no pattern matches with a 404 problem and a known path
// with an unsupported method with a 405 problem carrying the Allow header.
// Register all routes before serving; a Router is then safe for concurrent use.
type Router struct {
	mux *http.ServeMux
}

// NewRouter returns an empty Router.
func NewRouter() *Router { return &Router{mux: http.NewServeMux()} }

// Handle registers h for pattern (ServeMux syntax). Like ServeMux.Handle it
// panics on an invalid or conflicting pattern: routes are fixed in code, and
// a test that builds the router catches that.
func (rt *Router) Handle(pattern string, h http.Handler) { rt.mux.Handle(pattern, h) }

// HandleFunc registers f for pattern.
func (rt *Router) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	rt.mux.HandleFunc(pattern, f)
}

// ServeHTTP dispatches r, turning ServeMux's plain-text 404 and 405 answers into
// problems.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := rt.mux.Handler(r)
	if pattern != "" { // a route or a ServeMux redirect (path cleaning)
		rt.mux.ServeHTTP(w, r)
		return
	}
	// ServeMux's own 404/405 handler: run it against a header-only recorder
	// to learn which one it is and the Allow header.
	rec := &headerRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	if rec.status == http.StatusMethodNotAllowed {
		allow := rec.header.Get("Allow")
		w.Header().Set("Allow", allow)
		p := problem.MethodNotAllowed(r.Method)
		p.Detail += "; allowed: " + allow
		problem.Write(w, r, p)
		return
	}
	problem.Write(w, r, problem.NotFound("no resource at this path"))
}

// headerRecorder is a ResponseWriter that keeps headers and status and drops the body.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header         { return h.header }
func (h *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerRecorder) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}
