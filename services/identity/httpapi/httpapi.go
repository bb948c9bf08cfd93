// Package httpapi is the HAL REST API of iam.accounts, mounted by the
// gateway under /identity:
//
//	GET    /v1                  service root (links to accounts, sign-up, the OpenID provider)
//	POST   /v1/accounts         sign up as a customer: 201, Location, ETag (anonymous)
//	GET    /v1/accounts         list (?email=, ?role=, ?page=, ?size=): staff and operators
//	GET    /v1/accounts/{id}    one account: the account itself, staff and operators; 404 for anyone else
//	GET    /health              200 or 503 problem
//
// Requests reach the handlers through auth's Guard with each route's
// requirement (the service kit wires it from Route.Auth), so a request with
// a token has its Principal in the context and a request with a bad token
// never gets here. The
// OpenID provider's protocol endpoints and sign-in page are not this API:
// see package idp.
//
// Every error is a problem+json document; problemFor is the one mapping of
// errors to statuses.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/mysqldb"
	"github.com/sagittarius-a/sagittarius/internal/problem"
	"github.com/sagittarius-a/sagittarius/services/identity/account"
	"github.com/sagittarius-a/sagittarius/services/identity/accountevents"
)

// Renderer builds the REST model of an account (also the entity of its
// events) with absolute links under the public base URL (the gateway).
type Renderer struct {
	api       hal.Base // .../identity/v1
	customers hal.Base // .../customers/v1
	oauth     hal.Base // .../identity/oauth
}

// NewRenderer returns the Renderer for links under base (PUBLIC_BASE_URL).
func NewRenderer(base hal.Base) Renderer {
	return Renderer{api: base.Join("identity", "v1"), customers: base.Join("customers", "v1"), oauth: base.Join("identity", "oauth")}
}

// Account renders a, without its password hash. Links: self; customer for a
// customer account.
func (rd Renderer) Account(a account.Account) accountevents.Account {
	out := accountevents.Account{
		ID: a.ID, Email: a.Email, Name: a.Name, Role: string(a.Role), CustomerID: a.CustomerID, Status: string(a.Status),
		Version: a.Version, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
		Links: hal.Links{"self": hal.To(rd.api.Href("accounts", a.ID))},
	}
	if a.CustomerID != "" {
		out.Links.Set("customer", rd.customers.Href("customers", a.CustomerID))
	}
	return out
}

// API serves the routes. It is safe for concurrent use.
type API struct {
	store  account.Store
	render Renderer
	logger *slog.Logger
	now    func() time.Time
	newID  func() string
}

// New returns the API on store. logger may be nil.
func New(store account.Store, render Renderer, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.Default()
	}
	return &API{store: store, render: render, logger: logger, now: time.Now, newID: uuid.NewString}
}

// Routes returns a router of every route of the API, without token
// verification (the service kit serves the table with it), for tests.
func (a *API) Routes() *httpkit.Router {
	rt := httpkit.NewRouter()
	contracts.HandleRoutes(rt, a.Table())
	return rt
}

// Table is the route table of the API (all but /health): what the router
// serves and what contracts/openapi/identity.yaml is generated from.
func (a *API) Table() []contracts.Route {
	type listParams struct {
		contracts.PageParams
		Email string `query:"email" description:"only the account signing in with this email"`
		Role  string `query:"role" enum:"customer,staff,operator" description:"only accounts with this role"`
	}
	return []contracts.Route{
		{Method: "GET", Path: "/v1", Slash: true, Handler: a.root, Auth: auth.Anyone(), ID: "getRoot", Summary: "Entry point: links to accounts and to the OpenID provider",
			Responses: []contracts.Response{{Status: http.StatusOK, Body: rootDoc{}}}},
		{Method: "GET", Path: "/v1/accounts", Handler: a.list, Auth: auth.AnyOf(auth.RoleStaff, auth.RoleOperator), ID: "listAccounts", Summary: "List accounts (staff and operators)",
			Params:    listParams{},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: hal.Collection[accountevents.Account]{}}},
			Errors:    []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden}},
		{Method: "POST", Path: "/v1/accounts", Handler: a.signUp, Auth: auth.Anyone(), ID: "signUp", Summary: "Sign up as a customer (event account_registered)",
			Description: "Creates a customer account and its customer id. Sign in afterwards through the OpenID provider (authorization code with PKCE).",
			Body:        signUpRequest{},
			Responses:   []contracts.Response{{Status: http.StatusCreated, Body: accountevents.Account{}, Headers: []string{"Location", "ETag"}}},
			Errors:      []int{http.StatusConflict}},
		{Method: "GET", Path: "/v1/accounts/{id}", Handler: a.get, Auth: auth.Authenticated(), ID: "getAccount", Summary: "One account (itself, staff, operators)",
			Params:    contracts.IDParam{},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: accountevents.Account{}, Headers: []string{"ETag"}}},
			Errors:    []int{http.StatusUnauthorized, http.StatusNotFound}},
	}
}

// Contract describes iam.accounts for its manifests.
func (a *API) Contract(events contracts.Events) contracts.Service {
	return contracts.Service{Dir: "identity", Name: accountevents.Service, Title: "Identity (iam.accounts)",
		Description: "Accounts and the platform's embedded OpenID provider. Customers sign up here and sign in through the provider " +
			"(/identity/oauth, an OpenID Connect protocol surface outside this REST API).",
		Routes: a.Table(), Events: events}
}

// rootDoc is the entry point document.
type rootDoc struct {
	Service string    `json:"service"`
	Links   hal.Links `json:"_links"`
}

func (a *API) root(w http.ResponseWriter, r *http.Request) {
	links := hal.Links{}
	links.Set("self", a.render.api.Href())
	links.Set("accounts", a.render.api.Href("accounts"))
	links.SetLink("account", hal.Link{Href: a.render.api.Href("accounts") + "/{id}", Templated: true})
	links.SetLink("openid-configuration", hal.Link{Href: a.render.oauth.Href(".well-known", "openid-configuration"),
		Title: "the OpenID provider's discovery document", Type: "application/json"})
	links.Set(contracts.ContractsRel, a.render.api.Href("contracts"))
	hal.Write(w, r, http.StatusOK, rootDoc{accountevents.Service, links})
}

// errUnauthenticated: the operation needs a token and the request has none.
var errUnauthenticated = errors.New("unauthenticated")

// errForbidden: the token lacks the role the operation needs.
var errForbidden = errors.New("forbidden")

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	switch {
	case p == nil:
		a.fail(w, r, errUnauthenticated)
		return
	case !p.HasAnyRole(auth.RoleStaff, auth.RoleOperator):
		a.fail(w, r, errForbidden)
		return
	}
	q := r.URL.Query()
	f, page, err := decodeListQuery(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	as, total, err := a.store.ListAccounts(r.Context(), f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	items := make([]accountevents.Account, len(as))
	for i, x := range as {
		items[i] = a.render.Account(x)
	}
	coll := hal.NewCollection("accounts", a.render.api.Href("accounts"), q, items, page, total)
	coll.Links.SetLink("find", hal.Link{Href: a.render.api.Href("accounts") + "{?email,role,page,size}", Templated: true})
	coll.Links.Set("up", a.render.api.Href())
	hal.Write(w, r, http.StatusOK, coll)
}

func (a *API) signUp(w http.ResponseWriter, r *http.Request) {
	in, err := decodeSignUp(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	acc, err := account.SignUp(a.newID(), a.newID(), in.Email, in.Name, in.Password, a.now())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.store.CreateAccount(r.Context(), acc); err != nil {
		a.fail(w, r, err)
		return
	}
	a.write(w, r, http.StatusCreated, acc)
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.FromContext(r.Context())
	if p == nil {
		a.fail(w, r, errUnauthenticated)
		return
	}
	id := r.PathValue("id")
	// Anyone but the account itself, staff and operators gets 404: never
	// reveal that another person's account exists.
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 || (p.Subject != id && !p.HasAnyRole(auth.RoleStaff, auth.RoleOperator)) {
		a.fail(w, r, account.ErrNotFound)
		return
	}
	acc, err := a.store.Account(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.write(w, r, http.StatusOK, acc)
}

func (a *API) write(w http.ResponseWriter, r *http.Request, status int, acc account.Account) {
	body := a.render.Account(acc)
	httpkit.SetETag(w, acc.Version)
	if status == http.StatusCreated {
		w.Header().Set("Location", body.Links.Href("self"))
	}
	hal.Write(w, r, status, body)
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errUnauthenticated):
		auth.Challenge(w, r, http.StatusUnauthorized, "", "this operation needs an access token (Authorization: Bearer ...)", nil)
	case errors.Is(err, errForbidden):
		auth.Challenge(w, r, http.StatusForbidden, "insufficient_scope", "this operation needs the role staff or operator", nil)
	default:
		problem.Write(w, r, a.problemFor(r, err))
	}
}

// problemFor is the one mapping of errors to problems.
func (a *API) problemFor(r *http.Request, err error) *problem.Problem {
	var invalid *account.ValidationError
	switch {
	case problem.From(err) != nil:
		return problem.From(err)
	case errors.As(err, &invalid):
		fields := make([]problem.FieldError, len(invalid.Fields))
		for i, f := range invalid.Fields {
			fields[i] = problem.FieldError{Field: "/" + f.Field, Message: f.Message}
		}
		return problem.Validation(fields...)
	case errors.Is(err, account.ErrNotFound):
		return problem.NotFound("no account with this id")
	case errors.Is(err, account.ErrEmailTaken):
		return problem.Conflict("an account is registered with this email")
	case mysqldb.IsUnavailable(err):
		return problem.New(http.StatusServiceUnavailable, "the database is unavailable; retry shortly")
	case errors.Is(err, context.Canceled):
		return problem.New(http.StatusServiceUnavailable, "request cancelled")
	default:
		a.logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		return problem.Internal()
	}
}

// signUpRequest is the body of POST /v1/accounts.
type signUpRequest struct {
	Email    string `json:"email" description:"the sign-in name; one account per email"`
	Name     string `json:"name"`
	Password string `json:"password" format:"password" description:"8 to 256 characters; stored only as an argon2id hash"`
}

// decodeSignUp decodes a sign-up strictly (see httpkit.DecodeJSON); the
// domain validates the values.
func decodeSignUp(w http.ResponseWriter, r *http.Request) (signUpRequest, error) {
	var in signUpRequest
	err := httpkit.DecodeJSON(w, r, &in)
	return in, err
}

// decodeListQuery reads ?email, ?role, ?page and ?size. Errors are 400
// problems naming the parameter.
func decodeListQuery(q url.Values) (account.Filter, hal.Page, error) {
	page, err := hal.ParsePage(q)
	if err != nil {
		return account.Filter{}, hal.Page{}, err
	}
	f := account.Filter{Limit: page.Size, Offset: page.Offset()}
	var errs problem.Fields
	if vs, ok := q["email"]; ok {
		if errs.Check(len(vs) == 1 && vs[0] != "" && len(vs[0]) <= account.MaxEmailLen, "email", "must be given once, 1 to 254 bytes") {
			f.Email = account.NormalizeEmail(vs[0])
		}
	}
	if vs, ok := q["role"]; ok {
		if errs.Check(len(vs) == 1 && account.Role(vs[0]).Valid(), "role", "must be given once: customer, staff or operator") {
			f.Role = account.Role(vs[0])
		}
	}
	if len(errs) > 0 {
		p := problem.BadRequest("invalid query parameters")
		p.Errors = errs
		return account.Filter{}, hal.Page{}, p
	}
	return f, page, nil
}
