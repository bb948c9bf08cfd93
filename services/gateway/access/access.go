// Package access enforces at the gateway what the services' OpenAPI
// manifests declare about each operation's access (the security and x-roles
// generated from each route's contracts.Route.Auth): a request to an
// operation that needs a token and has none, or a bad one, gets 401; a token
// without the operation's role or scope gets 403; both as problem+json with
// an RFC 6750 WWW-Authenticate challenge (auth.Verifier.Guard). Verified
// tokens come from the verifier's cache: a token is checked once, not once
// per request.
//
// The gateway is the first line: every service verifies the token again
// itself. A request that matches no operation of the manifests (the gateway's
// own routes, the portal, the identity service's /oauth and /login, a path
// that is not in canonical form) is forwarded as it is, for the service to
// answer.
package access

import (
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
)

// Rule is the requirement of one operation, as a manifest declares it.
type Rule struct {
	Pattern string // "GET /orders/v1/orders/{id}": the method and the path through the gateway
	Req     auth.Requirement
}

type manifest struct {
	Servers []struct {
		URL string `yaml:"url"`
	} `yaml:"servers"`
	Paths map[string]map[string]struct {
		Security []map[string][]string `yaml:"security"`
		Roles    []string              `yaml:"x-roles"`
	} `yaml:"paths"`
}

var methods = map[string]bool{"get": true, "put": true, "post": true, "patch": true, "delete": true}

// Rules reads the requirement of every operation of openapi/*.yaml in fsys
// (the gateway's own manifest, whose server is "/", excepted). An operation
// without security is taken as needing a valid token (fail closed).
func Rules(fsys fs.FS) ([]Rule, error) {
	files, err := fs.Glob(fsys, "openapi/*.yaml")
	if err != nil {
		return nil, err
	}
	var out []Rule
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		var m manifest
		if err := yaml.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("access: %s: %w", f, err)
		}
		if len(m.Servers) == 0 || m.Servers[0].URL == "" {
			return nil, fmt.Errorf("access: %s names no server", f)
		}
		prefix := strings.TrimSuffix(m.Servers[0].URL, "/")
		if prefix == "" {
			continue // the gateway's own routes
		}
		for p, ops := range m.Paths {
			for method, op := range ops {
				if !methods[method] {
					continue
				}
				r := Rule{Pattern: strings.ToUpper(method) + " " + path.Join(prefix, p)}
				for _, s := range op.Security {
					if len(s) == 0 {
						r.Req.Anonymous = true
					}
					r.Req.Scopes = append(r.Req.Scopes, s[contracts.SecurityScheme]...)
				}
				for _, role := range op.Roles {
					r.Req.Roles = append(r.Req.Roles, auth.Role(role))
				}
				out = append(out, r)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("access: no operation in the manifests of %v", files)
	}
	return out, nil
}

// Enforcer is the gateway's check of the rules.
type Enforcer struct {
	mux  *http.ServeMux
	next http.Handler
}

// New returns an http.Handler that checks each request against rules with
// verifier and passes it to next when allowed. logger receives the causes of
// refusals (debug) and of an unreachable issuer (warn).
func New(rules []Rule, verifier *auth.Verifier, logger *slog.Logger, next http.Handler) (*Enforcer, error) {
	e := &Enforcer{mux: http.NewServeMux(), next: next}
	for _, r := range rules {
		var err error
		func() {
			defer func() {
				if v := recover(); v != nil {
					err = fmt.Errorf("access: %s: %v", r.Pattern, v)
				}
			}()
			e.mux.Handle(r.Pattern, verifier.Guard(r.Req, logger, next))
		}()
		if err != nil {
			return nil, err
		}
	}
	return e, nil
}

// ServeHTTP guards r by the rule of its operation, or forwards it when it
// matches none.
func (e *Enforcer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == "" || p[0] != '/' || path.Clean(p) != strings.TrimSuffix(p, "/") && path.Clean(p) != p {
		e.next.ServeHTTP(w, r) // not canonical: ServeMux would redirect; the service answers
		return
	}
	h, pattern := e.mux.Handler(r)
	if pattern == "" {
		e.next.ServeHTTP(w, r)
		return
	}
	h.ServeHTTP(w, r)
}
