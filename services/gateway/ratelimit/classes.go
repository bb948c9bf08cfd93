package ratelimit

import (
	"fmt"
	"net/http"
	"strings"
)

// The classes of routes.
const (
	ClassReads  = "reads"   // GET, HEAD, OPTIONS
	ClassWrites = "writes"  // every other method
	ClassSignIn = "sign-in" // the sign-in and sign-up routes (Classes.SignIn)
)

// DefaultSignInRoutes are the identity provider's sign-in and sign-up
// routes as the gateway sees them (RATE_LIMIT_SIGNIN_ROUTES).
const DefaultSignInRoutes = "POST /identity/oauth/token, POST /identity/login, POST /identity/v1/accounts"

// Route matches requests: a method ("" for any) and a path, exact, or a
// prefix when it ends with "/*" ("/identity/oauth/*").
type Route struct {
	Method string
	Path   string
}

func (rt Route) match(r *http.Request) bool {
	if rt.Method != "" && rt.Method != r.Method {
		return false
	}
	if p, ok := strings.CutSuffix(rt.Path, "/*"); ok {
		return strings.HasPrefix(r.URL.Path, p+"/")
	}
	return r.URL.Path == rt.Path
}

// ParseRoutes reads a comma-separated list of "[METHOD ]/path[/*]".
func ParseRoutes(v string) ([]Route, error) {
	var routes []Route
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		var rt Route
		if m, p, ok := strings.Cut(f, " "); ok {
			rt.Method, rt.Path = strings.ToUpper(m), strings.TrimSpace(p)
		} else {
			rt.Path = f
		}
		if !strings.HasPrefix(rt.Path, "/") {
			return nil, fmt.Errorf("route %q: want [METHOD ]/path", f)
		}
		routes = append(routes, rt)
	}
	return routes, nil
}

// Classes are the limits of each class and the routes of the sign-in class.
type Classes struct {
	Reads, Writes, SignIn Class
	// SignInRoutes are the requests of the sign-in class; any other
	// request is a read (GET, HEAD, OPTIONS) or a write.
	SignInRoutes []Route
}

// Classify returns the class of r: ClassSignIn, ClassReads or ClassWrites.
func (c *Classes) Classify(r *http.Request) string {
	for _, rt := range c.SignInRoutes {
		if rt.match(r) {
			return ClassSignIn
		}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return ClassReads
	}
	return ClassWrites
}

func (c *Classes) all() []Class {
	reads, writes, signin := c.Reads, c.Writes, c.SignIn
	reads.Name, writes.Name, signin.Name = ClassReads, ClassWrites, ClassSignIn
	return []Class{reads, writes, signin}
}
