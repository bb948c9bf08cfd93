// Package httpapi is the HTTP API of sales.orders (application/hal+json):
//
//	GET   /v1                 entry point: links to the orders collection
//	POST  /v1/orders          place an order (Idempotency-Key honoured) -> 201 + Location
//	GET   /v1/orders          list orders, newest first; ?customer_id= &status= &page= &size=
//	GET   /v1/orders/{id}     one order, with ETag
//	PATCH /v1/orders/{id}     {"status":"cancelled"} cancels it (If-Match honoured)
//	GET   /health             database and broker status
//
// Errors are RFC 9457 problems; fail is the one place that maps errors
// to HTTP statuses.
package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/failedmsg"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/problem"
	"github.com/sagittarius-a/sagittarius/services/orders/order"
	"github.com/sagittarius-a/sagittarius/services/orders/orderevents"
)

// Store is what the API needs from storage (implemented by mysql.Store).
// Its methods are safe for concurrent use.
type Store interface {
	// PlaceOrder places an order, or replays the first answer for a reused
	// idempotency key (replayed true).
	PlaceOrder(ctx context.Context, in order.PlaceInput, idempotencyKey string) (placed orderevents.Order, replayed bool, err error)
	// Order returns one order (order.ErrNotFound when unknown).
	Order(ctx context.Context, id string) (*order.Order, error)
	// Orders returns a page of orders and how many match in total.
	Orders(ctx context.Context, f order.Filter) ([]*order.Order, int, error)
	// CancelOrder cancels an order on its customer's request.
	CancelOrder(ctx context.Context, id string, ifMatch func(version int64) bool) (*order.Order, error)
}

// API serves the orders resources.
type API struct {
	store  Store
	render Renderer
	logger *slog.Logger
}

// New returns the API on store, rendering links with render. logger may be nil.
func New(store Store, render Renderer, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.Default()
	}
	return &API{store: store, render: render, logger: logger}
}

// Routes returns the router of the API's route table (Table), for tests:
// the service kit serves the table with /health and the contract routes.
func (a *API) Routes() *httpkit.Router {
	rt := httpkit.NewRouter()
	contracts.HandleRoutes(rt, a.Table())
	return rt
}

// Table is the route table of the API (all but /health): what the router
// serves and what contracts/openapi/orders.yaml is generated from.
func (a *API) Table() []contracts.Route {
	type listParams struct {
		contracts.PageParams
		CustomerID string `query:"customer_id" description:"only the orders of this customer"`
		Status     string `query:"status" enum:"pending,confirmed,cancelled,shipped,delivered" description:"only orders in this status"`
	}
	type placeParams struct {
		IdempotencyKey string `header:"Idempotency-Key" description:"1 to 191 visible ASCII characters; a retried POST with the same key (and body) returns the first answer instead of placing a second order"`
	}
	type itemParams struct {
		contracts.IDParam
		contracts.IfMatch
	}
	return []contracts.Route{
		{Method: "GET", Path: "/v1", Slash: true, Handler: a.index, Auth: auth.Anyone(), ID: "getRoot", Summary: "Entry point: links to the orders collection",
			Responses: []contracts.Response{{Status: http.StatusOK, Body: rootDoc{}}}},
		{Method: "POST", Path: "/v1/orders", Handler: a.placeOrder, Auth: auth.AnyOf(auth.RoleCustomer, auth.RoleStaff), ID: "placeOrder", Summary: "Place an order (event order_placed); status pending",
			Description: "The customer must be known and active, every product known, active and priced (from read models fed by customer and product events).",
			Params:      placeParams{}, Body: placeRequest{},
			Responses: []contracts.Response{{Status: http.StatusCreated, Body: orderevents.Order{}, Headers: []string{"Location", "ETag", "Idempotent-Replayed"}}}},
		{Method: "GET", Path: "/v1/orders", Handler: a.listOrders, Auth: auth.AnyOf(auth.RoleCustomer, auth.RoleStaff), ID: "listOrders", Summary: "List orders, newest first, filtered by customer and status",
			Params:    listParams{},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: hal.Collection[orderevents.Order]{}}},
			Errors:    []int{http.StatusBadRequest}},
		{Method: "GET", Path: "/v1/orders/{id}", Handler: a.getOrder, Auth: auth.AnyOf(auth.RoleCustomer, auth.RoleStaff), ID: "getOrder", Summary: "One order",
			Params:    contracts.IDParam{},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: orderevents.Order{}, Headers: []string{"ETag"}}},
			Errors:    []int{http.StatusNotFound}},
		{Method: "PATCH", Path: "/v1/orders/{id}", Handler: a.patchOrder, Auth: auth.AnyOf(auth.RoleCustomer, auth.RoleStaff), ID: "cancelOrder", Summary: `Cancel an order: {"status":"cancelled"} (event order_cancelled)`,
			Description: "The only change a client may make; 409 once the order is dispatched, delivered or already cancelled.",
			Params:      itemParams{}, Body: patchRequest{},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: orderevents.Order{}, Headers: []string{"ETag"}}},
			Errors:    []int{http.StatusNotFound, http.StatusConflict, http.StatusPreconditionFailed}},
	}
}

// Contract describes sales.orders for its manifests: this API's route table
// and the event types registered on events (the bus).
func (a *API) Contract(events contracts.Events) contracts.Service {
	return contracts.Service{Dir: "orders", Name: orderevents.Service, Title: "Orders (sales.orders)",
		Description: "Places, reads, lists and cancels orders; the order's status follows the saga (stock, payment, shipment events).",
		Routes:      a.Table(), Events: events}
}

// rootDoc is the entry point document.
type rootDoc struct {
	Links hal.Links `json:"_links" links:"self,orders,find-orders,order,contracts,failed-messages"`
}

// index is the API's entry point: a HAL document linking the collection.
func (a *API) index(w http.ResponseWriter, r *http.Request) {
	links := hal.Links{}
	links.Set("self", a.render.orders.Href())
	links.Set("orders", a.render.orders.Href("orders"))
	find := hal.Find(a.render.orders.Href("orders"), "customer_id", "status", "page", "size")
	find.Title = "orders by customer and status"
	links.SetLink("find-orders", find)
	links.SetLink("order", hal.Link{Href: a.render.orders.Href("orders") + "/{id}", Templated: true})
	links.Set(contracts.ContractsRel, a.render.orders.Href("contracts"))
	links[failedmsg.Rel] = failedmsg.RootLink(a.render.orders)
	hal.Write(w, r, http.StatusOK, rootDoc{links})
}

func (a *API) placeOrder(w http.ResponseWriter, r *http.Request) {
	key, err := idempotencyKey(r.Header)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	in, err := decodePlace(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	key = scopedKey(r, key)
	placed, replayed, err := a.store.PlaceOrder(r.Context(), in, key)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", placed.Links.Href("self"))
	httpkit.SetETag(w, placed.Version)
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	hal.Write(w, r, http.StatusCreated, placed)
}

func (a *API) listOrders(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, page, err := parseListQuery(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if own, confined := auth.Confined(r.Context()); confined {
		// A customer lists only their own orders; asking for another
		// customer's gives an empty page, as for a customer without orders.
		if own == "" || (f.CustomerID != "" && f.CustomerID != own) {
			own = noCustomer
		}
		f.CustomerID = own
	}
	orders, total, err := a.store.Orders(r.Context(), f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	items := make([]orderevents.Order, len(orders))
	for i, o := range orders {
		items[i] = a.render.Order(o)
	}
	filters := url.Values{}
	for _, k := range []string{"customer_id", "status"} {
		if v := q.Get(k); v != "" {
			filters.Set(k, v)
		}
	}
	hal.Write(w, r, http.StatusOK, hal.NewCollection("orders", a.render.orders.Href("orders"), filters, items, page, total).
		Searchable(a.render.orders.Href(), "orders", a.render.orders.Href("orders"), "customer_id", "status", "page", "size"))
}

func (a *API) getOrder(w http.ResponseWriter, r *http.Request) {
	o, err := a.owned(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpkit.SetETag(w, int64(o.Version))
	hal.Write(w, r, http.StatusOK, a.render.Order(o))
}

// patchOrder cancels an order: the only change a client may make.
func (a *API) patchOrder(w http.ResponseWriter, r *http.Request) {
	if _, err := decodePatch(w, r); err != nil {
		a.fail(w, r, err)
		return
	}
	if _, err := a.owned(r); err != nil {
		a.fail(w, r, err)
		return
	}
	o, err := a.store.CancelOrder(r.Context(), r.PathValue("id"), httpkit.IfMatch(r).Allows)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpkit.SetETag(w, int64(o.Version))
	hal.Write(w, r, http.StatusOK, a.render.Order(o))
}

// scopedKey returns the Idempotency-Key as stored: the SHA-256 of the
// caller's subject and the key, so that one caller's key never replays
// another caller's answer (nor tells them it exists); "" stays "".
func scopedKey(r *http.Request, key string) string {
	if key == "" {
		return ""
	}
	var sub string
	if p, ok := auth.FromContext(r.Context()); ok {
		sub = p.Subject
	}
	sum := sha256.Sum256([]byte(sub + "\x00" + key))
	return hex.EncodeToString(sum[:])
}

// noCustomer is a customer id no order has (ids hold no NUL).
const noCustomer = "\x00"

// owned returns the order of the request's {id}, or order.ErrNotFound when
// the caller may not see it (another customer's order answers exactly as a
// missing one: 404, nothing revealed).
func (a *API) owned(r *http.Request) (*order.Order, error) {
	o, err := a.store.Order(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if !auth.Owns(r.Context(), o.CustomerID) {
		return nil, order.ErrNotFound
	}
	return o, nil
}

// fail maps err to a problem: the one place where errors become HTTP
// statuses. Unknown errors are logged and answered with a bare 500.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	problem.Write(w, r, a.problemFor(r, err))
}

func (a *API) problemFor(r *http.Request, err error) *problem.Problem {
	var invalid *order.ValidationError
	switch {
	case errors.As(err, &invalid):
		fields := make([]problem.FieldError, len(invalid.Fields))
		for i, f := range invalid.Fields {
			fields[i] = problem.FieldError{Field: f.Field, Message: f.Message}
		}
		return problem.Validation(fields...)
	case errors.Is(err, order.ErrNotFound):
		return problem.NotFound("no order with this id")
	case errors.Is(err, order.ErrNotCancellable):
		return problem.Conflict(err.Error())
	case errors.Is(err, order.ErrVersionMismatch):
		return problem.PreconditionFailed("the order has changed since you read it; GET it again for the current ETag")
	case errors.Is(err, order.ErrKeyReused):
		p := problem.New(http.StatusUnprocessableEntity, "this Idempotency-Key was already used with a different request body")
		p.Type = "urn:sagittarius:problem:idempotency-key-reused"
		return p
	default:
		return httpkit.ErrorProblem(a.logger, r, err)
	}
}
