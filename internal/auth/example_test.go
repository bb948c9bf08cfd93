package auth_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/sagittarius-a/sagittarius/internal/auth"
)

// A service's main builds one Verifier from OIDC_ISSUER and OIDC_AUDIENCE
// and guards each route with what it requires; handlers read the caller
// from the request context and confine a customer to their own data.
func ExampleVerifier_Guard() {
	cfg, err := auth.ConfigFromEnv(os.Getenv)
	if err != nil {
		panic(err)
	}
	v, err := auth.New(cfg)
	if err != nil {
		panic(err) // OIDC_ISSUER or OIDC_AUDIENCE missing or invalid
	}
	logger := slog.Default()
	listOrders := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		if p.IsCustomer() {
			fmt.Fprintf(w, "orders of customer %s only", p.CustomerID)
			return
		}
		fmt.Fprint(w, "all orders") // staff
	})
	mux := http.NewServeMux()
	mux.Handle("GET /v1/products", v.Guard(auth.Requirement{Anonymous: true}, logger, http.NotFoundHandler()))
	mux.Handle("GET /v1/orders", v.Guard(auth.Requirement{Roles: []auth.Role{auth.RoleCustomer, auth.RoleStaff}}, logger, listOrders))
	mux.Handle("POST /v1/products", v.Guard(auth.Requirement{Roles: []auth.Role{auth.RoleStaff}}, logger, http.NotFoundHandler()))
}
