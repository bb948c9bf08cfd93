package edge

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// CORS headers the gateway allows and exposes to browser applications.
const (
	corsAllowMethods  = "GET, HEAD, POST, PUT, PATCH, DELETE"
	corsAllowHeaders  = "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, X-Request-Id, traceparent"
	corsExposeHeaders = "ETag, Location, RateLimit, RateLimit-Policy, Retry-After, X-Request-Id"
	corsMaxAge        = "600"
)

// CORS answers cross-origin requests from an allow-list of origins
// (scheme://host[:port], exactly as browsers send Origin). For an allowed
// origin, a preflight (OPTIONS with Access-Control-Request-Method) is
// answered 204 by the gateway with the allowed methods and headers, and any
// other request passes on and its answer carries Access-Control-Allow-Origin
// and the exposed headers. A disallowed origin gets no CORS header at all
// (its preflight is answered 204 without them: the browser then refuses).
// No credentials mode: the API takes bearer tokens, not cookies.
type CORS struct {
	origins map[string]bool
}

// ParseOrigins reads CORS_ALLOWED_ORIGINS: a comma-separated list of
// origins such as https://shop.example.com, http://localhost:5173.
func ParseOrigins(v string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		u, err := url.Parse(f)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("origin %q: want scheme://host[:port]", f)
		}
		out = append(out, strings.ToLower(u.Scheme+"://"+u.Host))
	}
	return out, nil
}

// NewCORS returns the CORS middleware for origins (ParseOrigins' form).
func NewCORS(origins []string) *CORS {
	c := &CORS{origins: map[string]bool{}}
	for _, o := range origins {
		c.origins[o] = true
	}
	return c
}

// Wrap returns next behind the CORS checks. With an empty allow-list it
// returns next itself.
func (c *CORS) Wrap(next http.Handler) http.Handler {
	if len(c.origins) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		preflight := r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != ""
		h := w.Header()
		if preflight {
			h.Add("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
			if c.origins[strings.ToLower(origin)] {
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Allow-Methods", corsAllowMethods)
				h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
				h.Set("Access-Control-Max-Age", corsMaxAge)
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Add("Vary", "Origin")
		if origin != "" && c.origins[strings.ToLower(origin)] {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
		next.ServeHTTP(w, r)
	})
}
