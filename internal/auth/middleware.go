package auth

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/sagittarius-a/sagittarius/internal/problem"
)

// Realm is the realm of every Bearer challenge the platform sends.
const Realm = "sagittarius"

// Requirement is what an operation asks of its caller.
type Requirement struct {
	// Anonymous lets requests without a token through (catalog browsing,
	// API roots). A request WITH a token is still verified, and refused when
	// the token is invalid, so that a client learns its token is bad.
	Anonymous bool
	// Roles: the caller must have at least one of them (none: any role, or
	// none at all).
	Roles []Role
	// Scopes: the token must carry every one of them.
	Scopes []string
}

// Guard returns next wrapped so that it runs only for requests meeting req,
// with the caller's Principal in the request context (FromContext).
// Otherwise it answers, as application/problem+json with a
// WWW-Authenticate: Bearer challenge (RFC 6750):
//
//   - 401, no error code: no token where one is required (an Authorization
//     header of another scheme counts as none);
//   - 401 invalid_token: the token is malformed, badly signed, expired, not
//     yet valid, or from another issuer or audience;
//   - 403 insufficient_scope: a valid token without a required role or scope;
//   - 503: the issuer's keys cannot be fetched and the token's key is unknown.
//
// logger receives the cause of refusals at debug level and of 503s at warn;
// nil means slog.Default().
func (v *Verifier) Guard(req Requirement, logger *slog.Logger, next http.Handler) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, present := BearerToken(r)
		if !present {
			if req.Anonymous {
				next.ServeHTTP(w, r)
				return
			}
			Challenge(w, r, http.StatusUnauthorized, "", "this operation needs an access token (Authorization: Bearer ...)", nil)
			return
		}
		p, err := v.Verify(r.Context(), raw)
		if err != nil {
			var te *TokenError
			if errors.As(err, &te) {
				logger.DebugContext(r.Context(), "token refused", "error", err)
				Challenge(w, r, http.StatusUnauthorized, te.Code, te.Description, nil)
				return
			}
			logger.WarnContext(r.Context(), "cannot verify token", "error", err)
			w.Header().Set("Retry-After", "5")
			problem.Write(w, r, problem.New(http.StatusServiceUnavailable, "the identity provider cannot be reached to verify the token; retry shortly"))
			return
		}
		if err := req.Check(p); err != nil {
			Challenge(w, r, http.StatusForbidden, "insufficient_scope", err.Error(), req.Scopes)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// Check reports why p does not meet req (nil when it does). A nil p meets
// only an Anonymous requirement.
func (req Requirement) Check(p *Principal) error {
	if p == nil {
		if req.Anonymous {
			return nil
		}
		return errors.New("this operation needs an access token")
	}
	if len(req.Roles) > 0 && !p.HasAnyRole(req.Roles...) {
		names := make([]string, len(req.Roles))
		for i, r := range req.Roles {
			names[i] = string(r)
		}
		return errors.New("this operation needs the role " + strings.Join(names, " or "))
	}
	for _, s := range req.Scopes {
		if !p.HasScope(s) {
			return errors.New("this operation needs the scope " + strings.Join(req.Scopes, " "))
		}
	}
	return nil
}

// BearerToken returns the token of r's "Authorization: Bearer <token>"
// header and whether r has one. The scheme is case-insensitive; any other
// scheme, an empty token, or several Authorization headers count as none.
func BearerToken(r *http.Request) (string, bool) {
	hs := r.Header.Values("Authorization")
	if len(hs) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(hs[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// Challenge writes a 401 or 403 problem with its WWW-Authenticate header:
// Bearer realm="sagittarius"[, error="code", error_description="desc"][, scope="..."].
// code "" (no credentials) omits error and error_description, as RFC 6750
// section 3.1 asks.
func Challenge(w http.ResponseWriter, r *http.Request, status int, code, desc string, scopes []string) {
	var b strings.Builder
	b.WriteString(`Bearer realm="` + Realm + `"`)
	if code != "" {
		b.WriteString(`, error="` + code + `"`)
		if desc != "" {
			b.WriteString(`, error_description="` + quotable(desc) + `"`)
		}
	}
	if len(scopes) > 0 {
		b.WriteString(`, scope="` + quotable(strings.Join(scopes, " ")) + `"`)
	}
	w.Header().Set("WWW-Authenticate", b.String())
	problem.Write(w, r, problem.New(status, desc))
}

// quotable keeps the characters RFC 6750 allows in error_description and
// scope (%x20-21 / %x23-5B / %x5D-7E): no quote, no backslash.
func quotable(s string) string {
	return strings.Map(func(c rune) rune {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return -1
		}
		return c
	}, s)
}

// Anyone is the requirement of an operation open to anonymous callers (a
// token, when sent, must still be valid).
func Anyone() *Requirement { return &Requirement{Anonymous: true} }

// Authenticated is the requirement of an operation open to any valid token,
// whatever its roles.
func Authenticated() *Requirement { return &Requirement{} }

// AnyOf is the requirement of an operation open to tokens with at least one
// of roles.
func AnyOf(roles ...Role) *Requirement { return &Requirement{Roles: roles} }

// WithScopes returns a copy of req that also needs every one of scopes.
func (req *Requirement) WithScopes(scopes ...string) *Requirement {
	c := *req
	c.Scopes = append(append([]string(nil), req.Scopes...), scopes...)
	return &c
}
