// Package httpkit holds the HTTP plumbing every service shares: a router that
// answers unknown paths and methods with problem+json (404, 405 + Allow), the
// middleware stack (request id, logging, recovery, body limit), strict JSON
// decoding, ETag/If-Match helpers, the health handler and a server runner
// with graceful shutdown.
package httpkit

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/sagittarius-a/sagittarius/internal/problem"
)

// Router routes requests with gorilla/mux. Routes are registered with
// patterns "METHOD /path/{var}", e.g. "GET /v1/customers/{id}"; path
// variables are available to handlers through r.PathValue("id") (as with
// net/http patterns) and mux.Vars(r). A path no route matches gets a 404
// problem; a known path with an unsupported method gets a 405 problem with
// the Allow header. A GET route also answers HEAD. A path ending in "/{$}"
// (net/http's "exactly this path") is accepted and means the path itself. Register all routes before
// serving; a Router is then safe for concurrent use.
type Router struct {
	mux   *mux.Router
	paths map[string]map[string]http.Handler // path template -> method -> handler
}

// NewRouter returns an empty Router.
func NewRouter() *Router {
	m := mux.NewRouter()
	m.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, r, problem.NotFound("no resource at this path"))
	})
	return &Router{mux: m, paths: make(map[string]map[string]http.Handler)}
}

// Handle registers h for pattern, "METHOD /path". It panics on a pattern
// without a method or a route registered twice: routes are fixed in code, and
// a test that builds the router catches that.
func (rt *Router) Handle(pattern string, h http.Handler) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok || method == "" || !strings.HasPrefix(path, "/") {
		panic("httpkit: route pattern " + pattern + " is not \"METHOD /path\"")
	}
	// "/v1/{$}" (net/http syntax for "exactly /v1/") is what gorilla/mux
	// matches for "/v1/": its templates always match the whole path.
	path = strings.TrimSuffix(path, "{$}")
	methods, known := rt.paths[path]
	if !known {
		methods = make(map[string]http.Handler)
		rt.paths[path] = methods
		rt.mux.Handle(path, rt.dispatch(path, methods))
	}
	if _, dup := methods[method]; dup {
		panic("httpkit: route " + pattern + " registered twice")
	}
	methods[method] = h
}

// HandleFunc registers f for pattern.
func (rt *Router) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	rt.Handle(pattern, http.HandlerFunc(f))
}

// ServeHTTP dispatches r.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) { rt.mux.ServeHTTP(w, r) }

// dispatch picks the handler of one path by method, copies the path
// variables into r.PathValue and records the path template (SetRoute).
func (rt *Router) dispatch(path string, methods map[string]http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetRoute(r, path)
		h, ok := methods[r.Method]
		if !ok && r.Method == http.MethodHead {
			h, ok = methods[http.MethodGet]
		}
		if !ok {
			allow := make([]string, 0, len(methods)+1)
			for m := range methods {
				allow = append(allow, m)
			}
			if _, get := methods[http.MethodGet]; get {
				if _, head := methods[http.MethodHead]; !head {
					allow = append(allow, http.MethodHead)
				}
			}
			slices.Sort(allow)
			w.Header().Set("Allow", strings.Join(allow, ", "))
			p := problem.MethodNotAllowed(r.Method)
			p.Detail += "; allowed: " + strings.Join(allow, ", ")
			problem.Write(w, r, p)
			return
		}
		for k, v := range mux.Vars(r) {
			r.SetPathValue(k, v)
		}
		h.ServeHTTP(w, r)
	})
}
