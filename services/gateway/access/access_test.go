package access_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	manifests "github.com/sagittarius-a/sagittarius/contracts"
	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/auth/authtest"
	"github.com/sagittarius-a/sagittarius/services/gateway/access"
)

// TestEnforcerAppliesTheCommittedManifests runs the rules of the committed
// manifests against real tokens of a test issuer.
func TestEnforcerAppliesTheCommittedManifests(t *testing.T) {
	rules, err := access.Rules(manifests.FS)
	if err != nil {
		t.Fatal(err)
	}
	byPattern := map[string]auth.Requirement{}
	for _, r := range rules {
		byPattern[r.Pattern] = r.Req
	}
	if req, ok := byPattern["GET /catalog/v1/products"]; !ok || !req.Anonymous {
		t.Errorf("catalog browsing: %+v %v", req, ok)
	}
	if req := byPattern["POST /catalog/v1/products"]; req.Anonymous || len(req.Roles) != 1 || req.Roles[0] != auth.RoleStaff {
		t.Errorf("addProduct: %+v", req)
	}
	iss := authtest.NewIssuer(t)
	v, err := auth.New(auth.Config{Issuer: iss.URL, Audience: authtest.Audience})
	if err != nil {
		t.Fatal(err)
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	e, err := access.New(rules, v, nil, next)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path, token string
		want                int
		challenge           string
	}{
		{"GET", "/orders/v1/orders", "", 401, `Bearer realm="sagittarius"`},
		{"GET", "/orders/v1/orders/o1", "garbage", 401, `error="invalid_token"`},
		{"GET", "/orders/v1/orders/o1", iss.Customer("c1"), http.StatusTeapot, ""},
		{"GET", "/customers/v1/customers", iss.Customer("c1"), 403, `error="insufficient_scope"`},
		{"GET", "/customers/v1/customers", iss.Staff(), http.StatusTeapot, ""},
		{"POST", "/catalog/v1/products", iss.Customer("c1"), 403, `error="insufficient_scope"`},
		{"POST", "/catalog/v1/products", iss.Staff(), http.StatusTeapot, ""},
		{"GET", "/catalog/v1/products", "", http.StatusTeapot, ""},
		{"GET", "/catalog/v1/products", "garbage", 401, `error="invalid_token"`},
		{"HEAD", "/catalog/v1/products/p1", "", http.StatusTeapot, ""},
		{"GET", "/inventory/v1/stock-items/p1", "", http.StatusTeapot, ""},
		{"POST", "/inventory/v1/stock-items/p1/replenishments", "", 401, `Bearer realm="sagittarius"`},
		{"PATCH", "/shipping/v1/shipments/s1", iss.Customer("c1"), 403, `error="insufficient_scope"`},
		{"POST", "/identity/v1/accounts", "", http.StatusTeapot, ""},
		{"GET", "/identity/oauth/keys", "", http.StatusTeapot, ""},
		{"GET", "/", "", http.StatusTeapot, ""},
		{"GET", "/orders/v1/x/../orders", "", http.StatusTeapot, ""}, // not canonical: the service answers
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != tc.want || !strings.Contains(rec.Header().Get("WWW-Authenticate"), tc.challenge) {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, rec.Code, rec.Header().Get("WWW-Authenticate"), tc.want, tc.challenge)
		}
		if (tc.want == 401 || tc.want == 403) && rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: Content-Type %q", tc.method, tc.path, rec.Header().Get("Content-Type"))
		}
	}
}
