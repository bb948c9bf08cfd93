// Package httpapi is the HAL REST API of logistics.shipments, mounted by the gateway under /shipping:
//
//	GET   /v1                                          entry point
//	GET   /v1/shipments?order_id=&status=&page=&size=  shipments, newest first
//	GET   /v1/shipments/{id}                           one shipment, with an ETag from its version
//	PATCH /v1/shipments/{id}  {"status":"dispatched"}  then {"status":"delivered"}; If-Match optional
//
// PATCH answers 200 with the shipment, 412 when If-Match does not match the current ETag, 409 for an
// illegal transition (only scheduled -> dispatched -> delivered), 422 for an unknown status or
// field, 415 for a body that is not JSON. Shipments are created and cancelled by events. Every
// answer is application/hal+json, every error application/problem+json (RFC 9457).
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/failedmsg"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/problem"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipment"
	"github.com/sagittarius-a/sagittarius/services/shipping/shipmentevents"
)

// Store is what the API needs from storage (implemented by mysql.Store); safe for concurrent use.
type Store interface {
	Shipment(ctx context.Context, id string) (shipment.Shipment, error)
	Shipments(ctx context.Context, f shipment.Filter, limit, offset int) ([]shipment.Shipment, int, error)
	UpdateShipment(ctx context.Context, id string, change func(shipment.Shipment, time.Time) (shipment.Shipment, bool, error)) (shipment.Shipment, error)
	// CustomerOf returns the customer of an order ("" when unknown).
	CustomerOf(ctx context.Context, orderID string) (string, error)
}

// Renderer renders shipments as REST models with absolute links through the gateway; the same
// models are the entities of shipmentevents. Immutable, safe for concurrent use.
type Renderer struct {
	api    hal.Base // <public>/shipping/v1
	orders hal.Base // <public>/orders/v1
}

// NewRenderer returns the Renderer for the gateway at public (PUBLIC_BASE_URL).
func NewRenderer(public hal.Base) Renderer {
	return Renderer{api: public.Join("shipping", "v1"), orders: public.Join("orders", "v1")}
}

// Shipment renders a shipment. Links: self, order.
func (rs Renderer) Shipment(s shipment.Shipment) shipmentevents.Shipment {
	a := s.Address
	return shipmentevents.Shipment{
		ID: s.ID, OrderID: s.OrderID, Status: string(s.Status),
		Address: shipmentevents.Address{Name: a.Name, Line1: a.Line1, Line2: a.Line2, PostalCode: a.PostalCode, City: a.City, Country: a.Country},
		Version: s.Version, ScheduledAt: s.ScheduledAt, DispatchedAt: s.DispatchedAt, DeliveredAt: s.DeliveredAt, CancelledAt: s.CancelledAt,
		Links: hal.Links{
			"self":  hal.To(rs.api.Href("shipments", s.ID)),
			"order": hal.To(rs.orders.Href("orders", s.OrderID)),
		},
	}
}

// Root is the REST model of /v1, the entry point.
type Root struct {
	Service string    `json:"service"`
	Links   hal.Links `json:"_links" links:"self,shipments,shipment,find-shipments,contracts,failed-messages"`
}

func (rs Renderer) root() Root {
	return Root{Service: shipmentevents.Service, Links: hal.Links{
		"self":                 hal.To(rs.api.Href()),
		"shipments":            hal.To(rs.api.Href("shipments")),
		"shipment":             hal.One(hal.Link{Href: rs.api.Href("shipments") + "/{id}", Templated: true}),
		"find-shipments":       hal.One(hal.Find(rs.api.Href("shipments"), "order_id", "status", "page", "size")),
		contracts.ContractsRel: hal.To(rs.api.Href("contracts")),
		failedmsg.Rel:          failedmsg.RootLink(rs.api),
	}}
}

// API serves the shipping HTTP resources.
type API struct {
	store  Store
	rs     Renderer
	logger *slog.Logger
}

// New returns the API on store, rendering links with rs; logger receives unexpected errors.
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
// serves and what contracts/openapi/shipping.yaml is generated from.
func (a *API) Table() []contracts.Route {
	type listParams struct {
		contracts.PageParams
		OrderID string `query:"order_id" description:"only the shipment of this order"`
		Status  string `query:"status" enum:"scheduled,dispatched,delivered,cancelled" description:"only shipments in this status"`
	}
	type itemParams struct {
		contracts.IDParam
		contracts.IfMatch
	}
	return []contracts.Route{
		{Method: "GET", Path: "/v1", Slash: true, Handler: a.getRoot, Auth: auth.Anyone(), ID: "getRoot", Summary: "Entry point: links to the shipments collection",
			Responses: []contracts.Response{{Status: http.StatusOK, Body: Root{}}}},
		{Method: "GET", Path: "/v1/shipments", Handler: a.listShipments, Auth: auth.AnyOf(auth.RoleCustomer, auth.RoleStaff), ID: "listShipments", Summary: "Shipments, filtered by order and status",
			Params:    listParams{},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: hal.Collection[shipmentevents.Shipment]{}}},
			Errors:    []int{http.StatusBadRequest}},
		{Method: "GET", Path: "/v1/shipments/{id}", Handler: a.getShipment, Auth: auth.AnyOf(auth.RoleCustomer, auth.RoleStaff), ID: "getShipment", Summary: "One shipment",
			Params:    contracts.IDParam{},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: shipmentevents.Shipment{}, Headers: []string{"ETag"}}},
			Errors:    []int{http.StatusNotFound}},
		{Method: "PATCH", Path: "/v1/shipments/{id}", Handler: a.patchShipment, Auth: auth.AnyOf(auth.RoleStaff), ID: "updateShipment",
			Summary:     `Dispatch or deliver a shipment: {"status":"dispatched"} then {"status":"delivered"} (events shipment_dispatched, shipment_delivered)`,
			Description: "409 for a transition the shipment's status does not allow.",
			Params:      itemParams{}, Body: patchRequest{},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: shipmentevents.Shipment{}, Headers: []string{"ETag"}}},
			Errors:    []int{http.StatusNotFound, http.StatusConflict, http.StatusPreconditionFailed}},
	}
}

// Contract describes logistics.shipments for its manifests: this API's
// route table and the event types registered on events (the bus).
func (a *API) Contract(events contracts.Events) contracts.Service {
	return contracts.Service{Dir: "shipping", Name: shipmentevents.Service, Title: "Shipping (logistics.shipments)",
		Description: "Schedules a shipment for every confirmed order, cancels it when the order is cancelled first; the API dispatches and delivers it.",
		Routes:      a.Table(), Events: events}
}

func (a *API) getRoot(w http.ResponseWriter, r *http.Request) {
	hal.Write(w, r, http.StatusOK, a.rs.root())
}

func (a *API) listShipments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := decodeFilter(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p, err := hal.ParsePage(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if own, confined := auth.Confined(r.Context()); confined {
		if own == "" {
			own = "\x00"
		}
		f.Customer = &own // a customer lists only the shipments of their own orders
	}
	ss, total, err := a.store.Shipments(r.Context(), f, p.Size, p.Offset())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]shipmentevents.Shipment, 0, len(ss))
	for _, s := range ss {
		out = append(out, a.rs.Shipment(s))
	}
	hal.Write(w, r, http.StatusOK, hal.NewCollection("shipments", a.rs.api.Href("shipments"), q, out, p, total).
		Searchable(a.rs.api.Href(), "shipments", a.rs.api.Href("shipments"), "order_id", "status", "page", "size"))
}

func (a *API) getShipment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if len(id) > 36 {
		a.fail(w, r, shipment.ErrNotFound)
		return
	}
	s, err := a.store.Shipment(r.Context(), id)
	if err == nil {
		if _, confined := auth.Confined(r.Context()); confined {
			// Another customer's shipment answers as a missing one.
			var owner string
			if owner, err = a.store.CustomerOf(r.Context(), s.OrderID); err == nil && !auth.Owns(r.Context(), owner) {
				err = shipment.ErrNotFound
			}
		}
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpkit.SetETag(w, s.Version)
	hal.Write(w, r, http.StatusOK, a.rs.Shipment(s))
}

// patchRequest is the body of PATCH /v1/shipments/{id}: only the status can change.
type patchRequest struct {
	Status *string `json:"status" required:"true" enum:"dispatched,delivered" description:"the status the shipment moves to: dispatched (it left the warehouse), then delivered"`
}

// decodePatch reads a PATCH body (application/json or application/merge-patch+json) into the target
// status: 415, 413, 400 or 422 problems.
func decodePatch(w http.ResponseWriter, r *http.Request) (shipment.Status, error) {
	var req patchRequest
	if err := httpkit.DecodeJSON(w, r, &req); err != nil {
		return "", err
	}
	var errs problem.Fields
	if req.Status == nil {
		errs.Add("/status", "is required")
	} else if !shipment.Status(*req.Status).Valid() {
		errs.Add("/status", "must be one of scheduled, dispatched, delivered, cancelled")
	}
	if err := errs.Err(); err != nil {
		return "", err
	}
	return shipment.Status(*req.Status), nil
}

func (a *API) patchShipment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if len(id) > 36 {
		a.fail(w, r, shipment.ErrNotFound)
		return
	}
	to, err := decodePatch(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	pre := httpkit.IfMatch(r)
	s, err := a.store.UpdateShipment(r.Context(), id, func(cur shipment.Shipment, now time.Time) (shipment.Shipment, bool, error) {
		if !pre.Allows(cur.Version) {
			return cur, false, shipment.ErrVersionMismatch
		}
		return cur.Transition(to, now)
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpkit.SetETag(w, s.Version)
	hal.Write(w, r, http.StatusOK, a.rs.Shipment(s))
}

// decodeFilter reads ?order_id= and ?status=; 400 when invalid.
func decodeFilter(q url.Values) (shipment.Filter, error) {
	var errs problem.Fields
	one := func(name string, max int) string {
		vs := q[name]
		switch {
		case len(vs) == 0:
			return ""
		case len(vs) > 1:
			errs.Add(name, "must be given once")
		case len(vs[0]) > max:
			errs.Add(name, "is too long")
		default:
			return vs[0]
		}
		return ""
	}
	f := shipment.Filter{OrderID: one("order_id", shipment.MaxIDLength), Status: shipment.Status(one("status", 16))}
	if f.Status != "" && !f.Status.Valid() {
		errs.Add("status", "must be one of scheduled, dispatched, delivered, cancelled")
	}
	if len(errs) > 0 {
		p := problem.BadRequest("invalid query parameters")
		p.Errors = errs
		return shipment.Filter{}, p
	}
	return f, nil
}

// fail writes err as a problem: the one mapping of errors to HTTP statuses of this service.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	problem.Write(w, r, a.problemFor(r, err))
}

func (a *API) problemFor(r *http.Request, err error) *problem.Problem {
	switch {
	case errors.Is(err, shipment.ErrNotFound):
		return problem.NotFound("no such shipment")
	case errors.Is(err, shipment.ErrVersionMismatch):
		return problem.PreconditionFailed("the shipment has changed; GET it again and retry with its current ETag in If-Match")
	case errors.Is(err, shipment.ErrIllegalTransition):
		return problem.Conflict(err.Error())
	case errors.Is(err, shipment.ErrInvalid):
		p := problem.Validation()
		p.Detail = err.Error()
		return p
	}
	return httpkit.ErrorProblem(a.logger, r, err)
}
