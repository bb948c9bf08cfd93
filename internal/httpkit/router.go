// Package httpkit holds the HTTP plumbing every service shares: a router that
// answers unknown paths and methods with problem+json (404, 405 + Allow), the
// middleware stack (request id, logging, recovery, body limit), strict JSON
// decoding, ETag/If-Match helpers, the health handler and a server runner
// with graceful shutdown.
package httpkit

import (
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/sagittarius-a/sagittarius/internal/problem"
)

// Router routes requests with gorilla/mux. Routes are registered with
// patterns "METHOD /path/{var}", e.g. "GET /v1/customers/{id}"; path
// variables are available to handlers through r.PathValue("id") (as with
// net/http patterns) and mux.Vars(r), unescaped. A path no route matches gets
// a 404 problem; a known path with an unsupported method gets a 405 problem
// with the Allow header. A GET route also answers HEAD, and every known path
// answers OPTIONS with 204 and Allow. A request whose Accept header admits no
// JSON gets a 406 problem. A path ending in "/{$}" (net/http's "exactly this
// path") is accepted and means the path itself. Register all routes before
// serving; a Router is then safe for concurrent use.
//
// Paths are matched as sent, never cleaned or redirected: a dot segment or an
// encoded slash in an id ("..%2F..%2Fcustomers") is part of that one path
// variable (so the lookup finds nothing: 404), never a path separator.
type Router struct {
	mux   *mux.Router
	paths map[string]map[string]http.Handler // path template -> method -> handler
}

// NewRouter returns an empty Router.
func NewRouter() *Router {
	m := mux.NewRouter().SkipClean(true).UseEncodedPath()
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
			allow := make([]string, 0, len(methods)+2)
			for m := range methods {
				allow = append(allow, m)
			}
			if _, get := methods[http.MethodGet]; get {
				if _, head := methods[http.MethodHead]; !head {
					allow = append(allow, http.MethodHead)
				}
			}
			if _, options := methods[http.MethodOptions]; !options {
				allow = append(allow, http.MethodOptions)
			}
			slices.Sort(allow)
			w.Header().Set("Allow", strings.Join(allow, ", "))
			if r.Method == http.MethodOptions {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			p := problem.MethodNotAllowed(r.Method)
			p.Detail += "; allowed: " + strings.Join(allow, ", ")
			problem.Write(w, r, p)
			return
		}
		if !AcceptsJSON(r.Header.Values("Accept")) {
			problem.Write(w, r, problem.New(http.StatusNotAcceptable,
				"this API serves application/hal+json, application/json and application/problem+json only"))
			return
		}
		for k, vs := range r.URL.Query() {
			for _, v := range append(vs, k) {
				if !validText(v) {
					problem.Write(w, r, problem.BadRequest("the query string holds invalid UTF-8 or a NUL character"))
					return
				}
			}
		}
		for k, v := range mux.Vars(r) {
			// UseEncodedPath: variables come escaped. The path was split on real
			// slashes only; an id may still hold an encoded one.
			u, err := url.PathUnescape(v)
			if err != nil || !validText(u) {
				problem.Write(w, r, problem.NotFound("no resource at this path"))
				return
			}
			r.SetPathValue(k, u)
		}
		h.ServeHTTP(w, r)
	})
}

// AcceptsJSON reports whether the Accept header values admit a JSON
// representation (application/json, application/*+json, application/*, */*),
// with a q above zero. No Accept header admits anything. A header that cannot
// be parsed is treated as absent, as most servers do.
func AcceptsJSON(values []string) bool {
	if len(values) == 0 {
		return true
	}
	seen := false
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			mt, params, err := mime.ParseMediaType(part)
			if err != nil {
				continue
			}
			seen = true
			if q, ok := params["q"]; ok && isZeroQ(q) {
				continue
			}
			switch {
			case mt == "*/*", mt == "application/*", mt == "application/json",
				strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"):
				return true
			}
		}
	}
	return !seen
}

// isZeroQ reports whether a q parameter is 0 (0, 0.0, 0.00, 0.000).
func isZeroQ(q string) bool {
	q = strings.TrimRight(strings.TrimSpace(q), "0")
	return q == "0." || q == "0" || q == ""
}

// validText reports whether s is valid UTF-8 without NUL characters: what an
// id, a path or a query value must be.
func validText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}
