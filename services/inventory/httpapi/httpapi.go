// Package httpapi is the HAL REST API of logistics.inventory, mounted by the gateway under
// /inventory:
//
//	GET  /v1                                         entry point
//	GET  /v1/stock-items?status=&page=&size=         stock per product
//	GET  /v1/stock-items/{product_id}
//	POST /v1/stock-items/{product_id}/replenishments {"quantity": n} -> 201, Location /v1/replenishments/{id}
//	GET  /v1/stock-items/{product_id}/replenishments
//	GET  /v1/replenishments?product_id=&page=&size=
//	GET  /v1/replenishments/{id}
//	GET  /v1/reservations?status=&product_id=&page=&size=
//	GET  /v1/reservations/{order_id}
//
// Every answer is application/hal+json, every error application/problem+json (RFC 9457).
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/problem"
	"github.com/sagittarius-a/sagittarius/services/inventory/inventory"
	"github.com/sagittarius-a/sagittarius/services/inventory/stockevents"
)

// Store is what the API needs from storage (implemented by mysql.Store). Every method is safe for
// concurrent use and runs in one transaction.
type Store interface {
	StockItem(ctx context.Context, productID string) (inventory.StockItem, error)
	StockItems(ctx context.Context, f inventory.StockFilter, limit, offset int) ([]inventory.StockItem, int, error)
	Replenish(ctx context.Context, productID string, quantity int64) (inventory.Replenishment, inventory.StockItem, error)
	Replenishment(ctx context.Context, id string) (inventory.Replenishment, error)
	Replenishments(ctx context.Context, productID string, limit, offset int) ([]inventory.Replenishment, int, error)
	Reservation(ctx context.Context, orderID string) (inventory.Reservation, error)
	Reservations(ctx context.Context, f inventory.ReservationFilter, limit, offset int) ([]inventory.Reservation, int, error)
}

// API serves the inventory's HTTP resources.
type API struct {
	store  Store
	rs     Renderer
	logger *slog.Logger
}

// New returns the API on store, rendering links with rs. logger receives unexpected errors.
func New(store Store, rs Renderer, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.Default()
	}
	return &API{store: store, rs: rs, logger: logger}
}

// Routes returns the router of the API's route table (Table), for tests:
// the service kit serves the table with /health and the contract routes.
func (a *API) Routes() *httpkit.Router {
	rt := httpkit.NewRouter()
	contracts.HandleRoutes(rt, a.Table())
	return rt
}

// Table is the route table of the API (all but /health): what the router
// serves and what contracts/openapi/inventory.yaml is generated from.
func (a *API) Table() []contracts.Route {
	type productParam struct {
		ProductID string `path:"product_id" description:"the product's id (catalog)"`
	}
	type stockListParams struct {
		contracts.PageParams
		Status string `query:"status" enum:"active,retired" description:"only stock of products in this status"`
	}
	type productReplenishmentsParams struct {
		productParam
		contracts.PageParams
	}
	type replenishmentListParams struct {
		contracts.PageParams
		ProductID string `query:"product_id" description:"only replenishments of this product"`
	}
	type reservationListParams struct {
		contracts.PageParams
		Status    string `query:"status" enum:"held,rejected,released" description:"only reservations in this status"`
		ProductID string `query:"product_id" description:"only reservations with a line of this product"`
	}
	type orderParam struct {
		OrderID string `path:"order_id" description:"the order's id (orders): a reservation is identified by its order"`
	}
	ok := func(body any, headers ...string) []contracts.Response {
		return []contracts.Response{{Status: http.StatusOK, Body: body, Headers: headers}}
	}
	return []contracts.Route{
		{Method: "GET", Path: "/v1", Slash: true, Handler: a.getRoot, Auth: auth.Anyone(), ID: "getRoot", Summary: "Entry point: links to stock items, reservations and replenishments",
			Responses: ok(Root{})},
		{Method: "GET", Path: "/v1/stock-items", Handler: a.listStockItems, Auth: auth.Anyone(), ID: "listStockItems", Summary: "Stock per product",
			Params: stockListParams{}, Responses: ok(hal.Collection[stockevents.Stock]{}), Errors: []int{http.StatusBadRequest}},
		{Method: "GET", Path: "/v1/stock-items/{product_id}", Handler: a.getStockItem, Auth: auth.Anyone(), ID: "getStockItem", Summary: "The stock of one product",
			Params: productParam{}, Responses: ok(stockevents.Stock{}, "ETag"), Errors: []int{http.StatusNotFound}},
		{Method: "POST", Path: "/v1/stock-items/{product_id}/replenishments", Handler: a.postReplenishment, Auth: auth.AnyOf(auth.RoleStaff), ID: "replenishStock",
			Summary: "Replenish the stock of a product (event stock_replenished)",
			Params:  productParam{}, Body: replenishmentRequest{},
			Responses: []contracts.Response{{Status: http.StatusCreated, Body: Replenishment{}, Headers: []string{"Location"}}},
			Errors:    []int{http.StatusNotFound, http.StatusConflict}},
		{Method: "GET", Path: "/v1/stock-items/{product_id}/replenishments", Handler: a.listProductReplenishments, Auth: auth.AnyOf(auth.RoleStaff), ID: "listProductReplenishments",
			Summary: "The replenishments of one product", Params: productReplenishmentsParams{},
			Responses: ok(hal.Collection[Replenishment]{}), Errors: []int{http.StatusBadRequest, http.StatusNotFound}},
		{Method: "GET", Path: "/v1/replenishments", Handler: a.listReplenishments, Auth: auth.AnyOf(auth.RoleStaff), ID: "listReplenishments", Summary: "All replenishments",
			Params: replenishmentListParams{}, Responses: ok(hal.Collection[Replenishment]{}), Errors: []int{http.StatusBadRequest}},
		{Method: "GET", Path: "/v1/replenishments/{id}", Handler: a.getReplenishment, Auth: auth.AnyOf(auth.RoleStaff), ID: "getReplenishment", Summary: "One replenishment",
			Params: contracts.IDParam{}, Responses: ok(Replenishment{}), Errors: []int{http.StatusNotFound}},
		{Method: "GET", Path: "/v1/reservations", Handler: a.listReservations, Auth: auth.AnyOf(auth.RoleStaff), ID: "listReservations", Summary: "Reservations of stock for orders",
			Params: reservationListParams{}, Responses: ok(hal.Collection[stockevents.Reservation]{}), Errors: []int{http.StatusBadRequest}},
		{Method: "GET", Path: "/v1/reservations/{order_id}", Handler: a.getReservation, Auth: auth.AnyOf(auth.RoleStaff), ID: "getReservation", Summary: "The reservation of one order",
			Params: orderParam{}, Responses: ok(stockevents.Reservation{}), Errors: []int{http.StatusNotFound}},
	}
}

// Contract describes logistics.inventory for its manifests: this API's
// route table and the event types registered on events (the bus).
func (a *API) Contract(events contracts.Events) contracts.Service {
	return contracts.Service{Dir: "inventory", Name: stockevents.Service, Title: "Inventory (logistics.inventory)",
		Description: "Stock per product, replenished through the API; reserves stock for placed orders (all lines or none, never below zero) and releases it when an order is cancelled.",
		Routes:      a.Table(), Events: events}
}

func (a *API) getRoot(w http.ResponseWriter, r *http.Request) {
	hal.Write(w, r, http.StatusOK, a.rs.Root())
}

func (a *API) listStockItems(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := decodeStockFilter(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p, err := hal.ParsePage(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	items, total, err := a.store.StockItems(r.Context(), f, p.Size, p.Offset())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]stockevents.Stock, 0, len(items))
	for _, it := range items {
		out = append(out, a.rs.Stock(it))
	}
	hal.Write(w, r, http.StatusOK, hal.NewCollection("stock-items", a.rs.api.Href("stock-items"), q, out, p, total).
		Searchable(a.rs.api.Href(), "stock-items", a.rs.api.Href("stock-items"), "status", "page", "size"))
}

func (a *API) getStockItem(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("product_id")
	if !inventory.ValidID(id) {
		a.fail(w, r, inventory.ErrNotFound)
		return
	}
	item, err := a.store.StockItem(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpkit.SetETag(w, item.Version)
	hal.Write(w, r, http.StatusOK, a.rs.Stock(item))
}

// replenishmentRequest is the body of POST /v1/stock-items/{product_id}/replenishments.
type replenishmentRequest struct {
	Quantity *int64 `json:"quantity"`
}

// decodeReplenishment reads and validates a replenishment request: 415, 413, 400 or 422 problems.
func decodeReplenishment(w http.ResponseWriter, r *http.Request) (int64, error) {
	var req replenishmentRequest
	if err := httpkit.DecodeJSON(w, r, &req); err != nil {
		return 0, err
	}
	var errs problem.Fields
	if req.Quantity == nil {
		errs.Add("/quantity", "is required")
	} else if inventory.ValidateReplenishment(*req.Quantity) != nil {
		errs.Add("/quantity", "must be an integer from 1 to 1000000")
	}
	if err := errs.Err(); err != nil {
		return 0, err
	}
	return *req.Quantity, nil
}

func (a *API) postReplenishment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("product_id")
	if !inventory.ValidID(id) {
		a.fail(w, r, inventory.ErrNotFound)
		return
	}
	qty, err := decodeReplenishment(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rep, _, err := a.store.Replenish(r.Context(), id, qty)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	res := a.rs.Replenishment(rep)
	w.Header().Set("Location", res.Links.Href("self"))
	hal.Write(w, r, http.StatusCreated, res)
}

func (a *API) listProductReplenishments(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("product_id")
	if !inventory.ValidID(id) {
		a.fail(w, r, inventory.ErrNotFound)
		return
	}
	if _, err := a.store.StockItem(r.Context(), id); err != nil {
		a.fail(w, r, err)
		return
	}
	a.replenishments(w, r, id, a.rs.api.Href("stock-items", id, "replenishments"), r.URL.Query())
}

func (a *API) listReplenishments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	productID, err := single(q, "product_id")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.replenishments(w, r, productID, a.rs.api.Href("replenishments"), q)
}

func (a *API) replenishments(w http.ResponseWriter, r *http.Request, productID, href string, q url.Values) {
	p, err := hal.ParsePage(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	reps, total, err := a.store.Replenishments(r.Context(), productID, p.Size, p.Offset())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]Replenishment, 0, len(reps))
	for _, rep := range reps {
		out = append(out, a.rs.Replenishment(rep))
	}
	hal.Write(w, r, http.StatusOK, hal.NewCollection("replenishments", href, q, out, p, total))
}

func (a *API) getReplenishment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !inventory.ValidID(id) {
		a.fail(w, r, inventory.ErrNotFound)
		return
	}
	rep, err := a.store.Replenishment(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	hal.Write(w, r, http.StatusOK, a.rs.Replenishment(rep))
}

func (a *API) listReservations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := decodeReservationFilter(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p, err := hal.ParsePage(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rs, total, err := a.store.Reservations(r.Context(), f, p.Size, p.Offset())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]stockevents.Reservation, 0, len(rs))
	for _, res := range rs {
		out = append(out, a.rs.Reservation(res))
	}
	hal.Write(w, r, http.StatusOK, hal.NewCollection("reservations", a.rs.api.Href("reservations"), q, out, p, total).
		Searchable(a.rs.api.Href(), "reservations", a.rs.api.Href("reservations"), "status", "product_id", "page", "size"))
}

func (a *API) getReservation(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("order_id")
	if !inventory.ValidID(id) {
		a.fail(w, r, inventory.ErrNotFound)
		return
	}
	res, err := a.store.Reservation(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	hal.Write(w, r, http.StatusOK, a.rs.Reservation(res))
}

// single returns the one value of query parameter name ("" when absent), or a 400 problem when it
// is repeated or too long.
func single(q url.Values, name string) (string, error) {
	vs := q[name]
	switch {
	case len(vs) == 0:
		return "", nil
	case len(vs) > 1:
		return "", badQuery(name, "must be given once")
	case len(vs[0]) > inventory.MaxIDLength:
		return "", badQuery(name, "is too long")
	}
	return vs[0], nil
}

func badQuery(name, msg string) error {
	p := problem.BadRequest("invalid query parameter " + name)
	p.Errors = []problem.FieldError{{Field: name, Message: msg}}
	return p
}

// decodeStockFilter reads ?status=active|retired.
func decodeStockFilter(q url.Values) (inventory.StockFilter, error) {
	s, err := single(q, "status")
	if err != nil {
		return inventory.StockFilter{}, err
	}
	switch st := inventory.ProductStatus(s); st {
	case "", inventory.ProductActive, inventory.ProductRetired:
		return inventory.StockFilter{Status: st}, nil
	}
	return inventory.StockFilter{}, badQuery("status", "must be active or retired")
}

// decodeReservationFilter reads ?status=held|rejected|released and ?product_id=.
func decodeReservationFilter(q url.Values) (inventory.ReservationFilter, error) {
	s, err := single(q, "status")
	if err != nil {
		return inventory.ReservationFilter{}, err
	}
	pid, err := single(q, "product_id")
	if err != nil {
		return inventory.ReservationFilter{}, err
	}
	switch st := inventory.ReservationStatus(s); st {
	case "", inventory.Held, inventory.Rejected, inventory.Released, inventory.Shipped:
		return inventory.ReservationFilter{Status: st, ProductID: pid}, nil
	}
	return inventory.ReservationFilter{}, badQuery("status", "must be held, rejected or released")
}

// fail writes err as a problem: the one mapping of errors to HTTP statuses of this service.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	problem.Write(w, r, a.problemFor(r, err))
}

func (a *API) problemFor(r *http.Request, err error) *problem.Problem {
	switch {
	case errors.Is(err, inventory.ErrNotFound):
		return problem.NotFound("no such " + resourceName(r))
	case errors.Is(err, inventory.ErrProductRetired):
		return problem.Conflict("the product is retired; its stock cannot be replenished")
	case errors.Is(err, inventory.ErrInvalid):
		p := problem.Validation()
		p.Detail = err.Error()
		return p
	}
	return httpkit.ErrorProblem(a.logger, r, err)
}

func resourceName(r *http.Request) string {
	switch {
	case r.PathValue("order_id") != "":
		return "reservation"
	case r.PathValue("id") != "":
		return "replenishment"
	default:
		return "stock item (the product is unknown to inventory)"
	}
}

func queryEscape(s string) string { return url.QueryEscape(s) }
