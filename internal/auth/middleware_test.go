package auth

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestGuard(t *testing.T) {
	ti := newTestIssuer(t)
	k := rsaKey(t)
	ti.addKey(t, "k1", k)
	c := newClock()
	v := mustNew(t, ti.config(c))
	customer := sign(t, jwt.SigningMethodRS256, "k1", k, ti.claims(c.now()))
	staffClaims := ti.claims(c.now())
	staffClaims["roles"] = []string{"staff"}
	staffClaims["scope"] = "catalog:write"
	staff := sign(t, jwt.SigningMethodRS256, "k1", k, staffClaims)
	expiredClaims := ti.claims(c.now())
	expiredClaims["exp"] = c.now().Add(-10 * time.Minute).Unix()
	expired := sign(t, jwt.SigningMethodRS256, "k1", k, expiredClaims)

	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := FromContext(r.Context())
		if !ok {
			io.WriteString(w, "anonymous")
			return
		}
		io.WriteString(w, p.Subject)
	})
	tests := []struct {
		name      string
		req       Requirement
		header    []string
		status    int
		challenge string
		body      string
	}{
		{"anonymous allowed", Requirement{Anonymous: true}, nil, 200, "", "anonymous"},
		{"anonymous with a valid token", Requirement{Anonymous: true}, []string{"Bearer " + customer}, 200, "", "acct-1"},
		{"anonymous with a bad token", Requirement{Anonymous: true}, []string{"Bearer " + expired}, 401,
			`Bearer realm="sagittarius", error="invalid_token", error_description="the token has expired"`, ""},
		{"missing", Requirement{}, nil, 401, `Bearer realm="sagittarius"`, ""},
		{"other scheme", Requirement{}, []string{"Basic dXNlcjpwYXNz"}, 401, `Bearer realm="sagittarius"`, ""},
		{"two headers", Requirement{}, []string{"Bearer " + customer, "Bearer " + staff}, 401, `Bearer realm="sagittarius"`, ""},
		{"malformed", Requirement{}, []string{"Bearer abc"}, 401,
			`Bearer realm="sagittarius", error="invalid_token", error_description="the token is malformed"`, ""},
		{"expired", Requirement{}, []string{"Bearer " + expired}, 401,
			`Bearer realm="sagittarius", error="invalid_token", error_description="the token has expired"`, ""},
		{"any token", Requirement{}, []string{"bearer " + customer}, 200, "", "acct-1"},
		{"role refused", Requirement{Roles: []Role{RoleStaff, RoleOperator}}, []string{"Bearer " + customer}, 403,
			`Bearer realm="sagittarius", error="insufficient_scope", error_description="this operation needs the role staff or operator"`, ""},
		{"role granted", Requirement{Roles: []Role{RoleStaff}}, []string{"Bearer " + staff}, 200, "", "acct-1"},
		{"scope refused", Requirement{Scopes: []string{"catalog:write"}}, []string{"Bearer " + customer}, 403,
			`Bearer realm="sagittarius", error="insufficient_scope", error_description="this operation needs the scope catalog:write", scope="catalog:write"`, ""},
		{"scope granted", Requirement{Roles: []Role{RoleStaff}, Scopes: []string{"catalog:write"}}, []string{"Bearer " + staff}, 200, "", "acct-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/things", nil)
			for _, h := range tt.header {
				r.Header.Add("Authorization", h)
			}
			w := httptest.NewRecorder()
			v.Guard(tt.req, nil, hello).ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Fatalf("WWW-Authenticate %q\nwant             %q", got, tt.challenge)
			}
			if tt.status != 200 {
				var p struct {
					Type     string
					Status   int
					Instance string
				}
				if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
					t.Fatalf("content type %q", ct)
				}
				if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != tt.status || p.Instance != "/v1/things" {
					t.Fatalf("problem %s (%v)", w.Body, err)
				}
				return
			}
			if w.Body.String() != tt.body {
				t.Fatalf("body %q, want %q", w.Body, tt.body)
			}
		})
	}
}

func TestGuardAnswers503WhenTheIssuerIsDown(t *testing.T) {
	ti := newTestIssuer(t)
	k := rsaKey(t)
	ti.addKey(t, "k1", k)
	c := newClock()
	v := mustNew(t, ti.config(c))
	tok := sign(t, jwt.SigningMethodRS256, "k1", k, ti.claims(c.now()))
	ti.srv.Close()
	r := httptest.NewRequest("GET", "/v1/things", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	v.Guard(Requirement{}, nil, http.NotFoundHandler()).ServeHTTP(w, r)
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || w.Header().Get("Content-Type") != "application/problem+json" || w.Header().Get("WWW-Authenticate") != "" {
		t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
	}
}
