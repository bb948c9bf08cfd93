package contracts

import (
	"net/http"
	"strings"

	"github.com/swaggest/openapi-go/openapi3"

	"github.com/sagittarius-a/sagittarius/internal/auth"
)

// SecurityScheme is the name of the OpenID Connect security scheme every
// OpenAPI manifest declares.
const SecurityScheme = "oidc"

// RolesExtension is the operation member of the OpenAPI manifests listing the
// roles an operation needs (any one of them): OpenAPI 3.0 has no place for
// roles in an openIdConnect requirement, whose list holds scopes.
const RolesExtension = "x-roles"

// DefaultOpenIDConnectURL is the discovery document of the platform's
// default issuer (the embedded identity service behind the gateway of
// scripts/up), named by the manifests. A deployment trusts the issuer of
// its OIDC_ISSUER.
const DefaultOpenIDConnectURL = "http://127.0.0.1:8080/identity/oauth/.well-known/openid-configuration"

// addSecurity declares the OpenID Connect scheme and each operation's
// requirement: security [{oidc: scopes}] and x-roles for an operation that
// needs a token, [{}, {oidc: []}] (a token is optional) for an anonymous one.
func addSecurity(spec *openapi3.Spec, routes []Route) {
	desc := "Access tokens (JWT) of the platform's OpenID Connect issuer (OIDC_ISSUER; by default the embedded identity service), " +
		"sent as Authorization: Bearer. A missing, malformed, expired or foreign token gets 401 with a WWW-Authenticate: Bearer challenge; " +
		"a token without the operation's role (x-roles, any one of them) or scopes gets 403."
	spec.ComponentsEns().SecuritySchemesEns().MapOfSecuritySchemeOrRefValues = map[string]openapi3.SecuritySchemeOrRef{
		SecurityScheme: {SecurityScheme: &openapi3.SecurityScheme{OpenIDConnectSecurityScheme: &openapi3.OpenIDConnectSecurityScheme{
			OpenIDConnectURL: DefaultOpenIDConnectURL, Description: &desc}}},
	}
	for _, rt := range routes {
		item, ok := spec.Paths.MapOfPathItemValues[rt.Path]
		if !ok || rt.Auth == nil {
			continue
		}
		method := strings.ToLower(rt.Method)
		op, ok := item.MapOfOperationValues[method]
		if !ok {
			continue
		}
		scopes := append([]string{}, rt.Auth.Scopes...)
		if rt.Auth.Anonymous {
			op.Security = []map[string][]string{{}, {SecurityScheme: scopes}}
		} else {
			op.Security = []map[string][]string{{SecurityScheme: scopes}}
		}
		if len(rt.Auth.Roles) > 0 {
			roles := make([]string, len(rt.Auth.Roles))
			for i, r := range rt.Auth.Roles {
				roles[i] = string(r)
			}
			if op.MapOfAnything == nil {
				op.MapOfAnything = map[string]any{}
			}
			op.MapOfAnything[RolesExtension] = roles
		}
		item.MapOfOperationValues[method] = op
		spec.Paths.MapOfPathItemValues[rt.Path] = item
	}
}

// authStatuses are the problem statuses an operation answers for its
// requirement: 401 for a bad token (also on an anonymous operation, which
// refuses a token it cannot verify), and 403 when it needs a role or scope.
func authStatuses(req *auth.Requirement) []int {
	if req == nil {
		return nil
	}
	out := []int{http.StatusUnauthorized}
	if len(req.Roles) > 0 || len(req.Scopes) > 0 {
		out = append(out, http.StatusForbidden)
	}
	return out
}
