// Package httpapi is the HAL REST API of crm.customers, mounted by the gateway
// under /customers:
//
//	GET    /v1                     service root (links to the collections)
//	GET    /v1/customers           list (?email=, ?status=, ?page=, ?size=)
//	POST   /v1/customers           register: 201, Location, ETag
//	GET    /v1/customers/{id}      read, with ETag
//	PATCH  /v1/customers/{id}      change email, name or status; If-Match optional, 412 when stale
//	DELETE /v1/customers/{id}      remove: 204; If-Match optional
//	GET    /health                 200 or 503 problem
//
// Every error is a problem+json document; problemFor is the one mapping of
// errors to statuses.
package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/failedmsg"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/problem"
	"github.com/sagittarius-a/sagittarius/services/customers/customer"
	"github.com/sagittarius-a/sagittarius/services/customers/customerevents"
)

// Renderer builds the REST model of a customer (also the entity of its
// events) with absolute links under the public base URL (the gateway).
type Renderer struct {
	api           hal.Base // .../customers/v1
	orders        hal.Base // .../orders/v1
	notifications hal.Base // .../notifications/v1
}

// NewRenderer returns the Renderer for links under base (PUBLIC_BASE_URL).
func NewRenderer(base hal.Base) Renderer {
	return Renderer{api: base.Join("customers", "v1"), orders: base.Join("orders", "v1"), notifications: base.Join("notifications", "v1")}
}

// Customer renders c. Links: self, orders (the customer's orders),
// notifications (the e-mails sent to the customer, in crm.notifications).
func (rd Renderer) Customer(c customer.Customer) customerevents.Customer {
	return customerevents.Customer{
		ID: c.ID, Email: c.Email, Name: c.Name, Status: string(c.Status), Version: c.Version,
		RegisteredAt: c.RegisteredAt, UpdatedAt: c.UpdatedAt,
		Links: hal.Links{
			"self":          hal.To(rd.api.Href("customers", c.ID)),
			"orders":        hal.To(rd.orders.HrefQuery(url.Values{"customer_id": {c.ID}}, "orders")),
			"notifications": hal.To(rd.notifications.HrefQuery(url.Values{"customer_id": {c.ID}}, "notifications")),
		},
	}
}

// API serves the routes. It is safe for concurrent use.
type API struct {
	store  customer.Store
	render Renderer
	logger *slog.Logger
	now    func() time.Time
	newID  func() string
}

// New returns the API on store. logger may be nil.
func New(store customer.Store, render Renderer, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.Default()
	}
	return &API{store: store, render: render, logger: logger, now: time.Now, newID: uuid.NewString}
}

// Routes returns the router of the API's route table (Table), for tests:
// the service kit serves the table with /health and the contract routes.
func (a *API) Routes() *httpkit.Router {
	rt := httpkit.NewRouter()
	contracts.HandleRoutes(rt, a.Table())
	return rt
}

// Table is the route table of the API (all but /health): what the router
// serves and what contracts/openapi/customers.yaml is generated from.
func (a *API) Table() []contracts.Route {
	type listParams struct {
		contracts.PageParams
		Email  string `query:"email" description:"only the customer with this email (normalized like at registration)"`
		Status string `query:"status" enum:"active,suspended" description:"only customers in this status"`
	}
	type itemParams struct {
		contracts.IDParam
		contracts.IfMatch
	}
	return []contracts.Route{
		{Method: "GET", Path: "/v1", Slash: true, Handler: a.root, Auth: auth.Anyone(), ID: "getRoot", Summary: "Entry point: links to the customers collection",
			Responses: []contracts.Response{{Status: http.StatusOK, Body: rootDoc{}}}},
		{Method: "GET", Path: "/v1/customers", Handler: a.list, Auth: auth.AnyOf(auth.RoleStaff), ID: "listCustomers", Summary: "List customers, filtered by email and status",
			Params:    listParams{},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: hal.Collection[customerevents.Customer]{}}},
			Errors:    []int{http.StatusBadRequest}},
		{Method: "POST", Path: "/v1/customers", Handler: a.register, Auth: auth.AnyOf(auth.RoleStaff), ID: "registerCustomer", Summary: "Register a customer (event customer_registered)",
			Body:      registerRequest{},
			Responses: []contracts.Response{{Status: http.StatusCreated, Body: customerevents.Customer{}, Headers: []string{"Location", "ETag"}}},
			Errors:    []int{http.StatusConflict}},
		{Method: "GET", Path: "/v1/customers/{id}", Handler: a.get, Auth: auth.AnyOf(auth.RoleCustomer, auth.RoleStaff), ID: "getCustomer", Summary: "One customer",
			Params:    contracts.IDParam{},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: customerevents.Customer{}, Headers: []string{"ETag"}}},
			Errors:    []int{http.StatusNotFound}},
		{Method: "PATCH", Path: "/v1/customers/{id}", Handler: a.patch, Auth: auth.AnyOf(auth.RoleCustomer, auth.RoleStaff), ID: "updateCustomer", Summary: "Change a customer's email, name or status (event customer_updated)",
			Params: itemParams{}, Body: patchRequest{},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: customerevents.Customer{}, Headers: []string{"ETag"}}},
			Errors:    []int{http.StatusNotFound, http.StatusConflict, http.StatusPreconditionFailed}},
		{Method: "DELETE", Path: "/v1/customers/{id}", Handler: a.remove, Auth: auth.AnyOf(auth.RoleStaff), ID: "removeCustomer", Summary: "Remove a customer (event customer_removed)",
			Params:    itemParams{},
			Responses: []contracts.Response{{Status: http.StatusNoContent}},
			Errors:    []int{http.StatusNotFound, http.StatusPreconditionFailed}},
	}
}

// Contract describes crm.customers for its manifests: this API's route
// table and the event types registered on events (the bus).
func (a *API) Contract(events contracts.Events) contracts.Service {
	return contracts.Service{Dir: "customers", Name: customerevents.Service, Title: "Customers (crm.customers)",
		Description: "Registers, reads, updates, lists and removes customers. Orders may be placed only for active customers.",
		Routes:      a.Table(), Events: events}
}

// rootDoc is the entry point document.
type rootDoc struct {
	Service string    `json:"service"`
	Links   hal.Links `json:"_links" links:"self,customers,find-customers,customer,contracts,failed-messages"`
}

func (a *API) root(w http.ResponseWriter, r *http.Request) {
	links := hal.Links{}
	links.Set("self", a.render.api.Href())
	links.Set("customers", a.render.api.Href("customers"))
	links.SetLink("find-customers", hal.Link{
		Href: a.render.api.Href("customers") + "{?email,status,page,size}", Templated: true,
		Title: "customers by email and status",
	})
	links.SetLink("customer", hal.Link{Href: a.render.api.Href("customers") + "/{id}", Templated: true})
	links.Set(contracts.ContractsRel, a.render.api.Href("contracts"))
	links[failedmsg.Rel] = failedmsg.RootLink(a.render.api)
	hal.Write(w, r, http.StatusOK, rootDoc{customerevents.Service, links})
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, page, err := decodeListQuery(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	cs, total, err := a.store.List(r.Context(), f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	items := make([]customerevents.Customer, len(cs))
	for i, c := range cs {
		items[i] = a.render.Customer(c)
	}
	coll := hal.NewCollection("customers", a.render.api.Href("customers"), q, items, page, total).
		Searchable(a.render.api.Href(), "customers", a.render.api.Href("customers"), "email", "status", "page", "size")
	hal.Write(w, r, http.StatusOK, coll)
}

func (a *API) register(w http.ResponseWriter, r *http.Request) {
	in, err := decodeRegister(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	c, err := customer.Register(a.newID(), in.Email, in.Name, a.now())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.store.Create(r.Context(), c); err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeCustomer(w, r, http.StatusCreated, c)
}

// customerID returns the {id} path value, or ErrNotFound when it cannot be
// a customer id (ids are UUIDs).
func customerID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return "", customer.ErrNotFound
	}
	if !auth.Owns(r.Context(), id) {
		return "", customer.ErrNotFound // another customer's record: as if it did not exist
	}
	return id, nil
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	id, err := customerID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	c, err := a.store.Get(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeCustomer(w, r, http.StatusOK, c)
}

func (a *API) patch(w http.ResponseWriter, r *http.Request) {
	id, err := customerID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ch, err := decodePatch(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	pre := httpkit.IfMatch(r)
	c, err := a.store.Update(r.Context(), id, func(c *customer.Customer) (bool, error) {
		if !pre.Allows(c.Version) {
			return false, customer.ErrStale
		}
		return c.Apply(ch, a.now())
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeCustomer(w, r, http.StatusOK, c)
}

func (a *API) remove(w http.ResponseWriter, r *http.Request) {
	id, err := customerID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	pre := httpkit.IfMatch(r)
	_, err = a.store.Remove(r.Context(), id, func(c customer.Customer) error {
		if !pre.Allows(c.Version) {
			return customer.ErrStale
		}
		return nil
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) writeCustomer(w http.ResponseWriter, r *http.Request, status int, c customer.Customer) {
	body := a.render.Customer(c)
	httpkit.SetETag(w, c.Version)
	if status == http.StatusCreated {
		w.Header().Set("Location", body.Links.Href("self"))
	}
	hal.Write(w, r, status, body)
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	problem.Write(w, r, a.problemFor(r, err))
}

// problemFor is the one mapping of errors to problems.
func (a *API) problemFor(r *http.Request, err error) *problem.Problem {
	var invalid *customer.ValidationError
	switch {
	case errors.As(err, &invalid):
		fields := make([]problem.FieldError, len(invalid.Fields))
		for i, f := range invalid.Fields {
			fields[i] = problem.FieldError{Field: "/" + f.Field, Message: f.Message}
		}
		return problem.Validation(fields...)
	case errors.Is(err, customer.ErrNotFound):
		return problem.NotFound("no customer with this id")
	case errors.Is(err, customer.ErrEmailTaken):
		return problem.Conflict("another customer is registered with this email")
	case errors.Is(err, customer.ErrStale):
		return problem.PreconditionFailed("the customer has changed since you read it; GET it again for the current ETag")
	default:
		return httpkit.ErrorProblem(a.logger, r, err)
	}
}
