package contracts

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/sagittarius-a/sagittarius/internal/auth"
)

// Route is one HTTP operation of a service: the pattern and handler the
// router serves, and the description the OpenAPI manifest is generated from.
// A service lists all its routes in one table (one function in its httpapi
// package); the router and the contracts read the same table, so a route
// cannot be served without being documented.
type Route struct {
	Method  string           // GET, POST, PUT, PATCH or DELETE
	Path    string           // ServeMux path pattern, e.g. /v1/orders/{id}
	Handler http.HandlerFunc // the handler; nil is allowed only in tests of the table
	// Slash also serves Path + "/" (e.g. the API root /v1 and /v1/).
	Slash bool
	// Auth is who may call the operation, declared by every route
	// (auth.Anyone, auth.Authenticated, auth.AnyOf(roles...), WithScopes):
	// the service kit wraps Handler with the token verifier's Guard for it,
	// the OpenAPI manifest declares it (security, x-roles) and the gateway
	// enforces what the manifest says. A route without it is invalid
	// (Service.Validate).
	Auth *auth.Requirement

	ID          string // operationId, lowerCamelCase, unique in the service: getOrder
	Summary     string // one line, for people
	Description string // optional, longer
	Tag         string // optional; default: the first path segment after the version (orders)

	// Params is a struct value whose fields describe the parameters, with the
	// swaggest tags path:"id", query:"status", header:"If-Match" plus
	// description, enum, minimum, maximum, default, format, required. Every
	// {name} in Path must be a path field. Nil when the operation has none.
	Params any
	// Body is a value of the type the handler decodes the request body into
	// (application/json). Nil when the operation takes no body. Operations
	// with a body automatically document the 400, 413, 415 and 422 problems
	// that httpkit.DecodeJSON answers.
	Body any
	// Responses are the successful answers.
	Responses []Response
	// Errors lists the other statuses the operation answers with an
	// application/problem+json body (404, 409, 412 …). 500 is always added,
	// and 503 to every route of a service with a database (Service.Events).
	Errors []int
}

// Response is one successful answer of a Route.
type Response struct {
	Status int // 200, 201, 204 …
	// Body is a value of the type the handler writes (e.g. orderevents.Order{}
	// or hal.Collection[orderevents.Order]{}); nil for no body.
	Body any
	// ContentType of Body; default application/hal+json.
	ContentType string
	// Headers names the response headers set on this answer: Location, ETag,
	// Idempotent-Replayed, … (described from a table of known headers).
	Headers []string
	// Description of the answer; default the HTTP status text.
	Description string
	// Example overrides the example generated from the Body's schema.
	Example any
}

// Pattern returns the ServeMux pattern, e.g. "GET /v1/orders/{id}".
func (r Route) Pattern() string { return r.Method + " " + r.Path }

// Router is what HandleRoutes needs: httpkit.Router and http.ServeMux fit.
type Router interface {
	HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request))
}

// HandleRoutes registers every route of table on rt. It panics, like
// ServeMux, on an invalid or duplicate pattern or a route without handler:
// route tables are fixed in code and any test that builds the router
// catches it.
func HandleRoutes(rt Router, table []Route) {
	for _, r := range table {
		if r.Handler == nil {
			panic(fmt.Sprintf("contracts: route %s has no handler", r.Pattern()))
		}
		rt.HandleFunc(r.Pattern(), r.Handler)
		if r.Slash && !strings.HasSuffix(r.Path, "/") {
			rt.HandleFunc(r.Method+" "+r.Path+"/{$}", r.Handler)
		}
	}
}

// PageParams are the pagination parameters of every collection (see
// hal.ParsePage). Embed it in a Route's Params struct.
type PageParams struct {
	Page int `query:"page" minimum:"1" default:"1" description:"1-based page number"`
	Size int `query:"size" minimum:"1" maximum:"100" default:"20" description:"items per page (at most 100)"`
}

// IfMatch is the optimistic concurrency header of a change. Embed it in a
// Route's Params struct.
type IfMatch struct {
	IfMatch string `header:"If-Match" description:"the ETag of the version the change is based on; a stale one gives 412. Absent or * applies the change to any version."`
}

// IDParam is the {id} path parameter of an item resource.
type IDParam struct {
	ID string `path:"id" description:"the resource id"`
}
