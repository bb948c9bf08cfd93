// Package httpapi is the HAL REST API of finance.payments, mounted by the gateway under /payments:
//
//	GET /v1                                          entry point
//	GET /v1/payments?order_id=&status=&page=&size=   payments, newest first
//	GET /v1/payments/{id}                            one payment (ETag from its version)
//	POST /v1/payment-methods {"token"}               register a payment method (the token never leaves payments)
//	GET /v1/payment-methods/{id}                     one payment method, without its token
//
// Payments are created by events, never through the API. A refund shows on the payment: status
// "refunded", refunded_at and refund_reference. Every answer is application/hal+json, every error
// application/problem+json (RFC 9457).
package httpapi

import (
	"context"
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
	"github.com/sagittarius-a/sagittarius/services/payments/payment"
	"github.com/sagittarius-a/sagittarius/services/payments/paymentevents"
)

// Store is what the API needs from storage (implemented by mysql.Store); safe for concurrent use.
type Store interface {
	Payment(ctx context.Context, id string) (payment.Payment, error)
	Payments(ctx context.Context, f payment.Filter, limit, offset int) ([]payment.Payment, int, error)
	// CustomerOf returns the customer of an order ("" when unknown).
	CustomerOf(ctx context.Context, orderID string) (string, error)
	AddMethod(ctx context.Context, m payment.Method) error
	Method(ctx context.Context, id string) (payment.Method, error)
	Methods(ctx context.Context, customer *string, limit, offset int) ([]payment.Method, int, error)
}

// Renderer renders payments as REST models with absolute links through the gateway; the same
// models are the entities of paymentevents. Immutable, safe for concurrent use.
type Renderer struct {
	api       hal.Base // <public>/payments/v1
	orders    hal.Base // <public>/orders/v1
	inventory hal.Base // <public>/inventory/v1
	customers hal.Base // <public>/customers/v1
}

// NewRenderer returns the Renderer for the gateway at public (PUBLIC_BASE_URL).
func NewRenderer(public hal.Base) Renderer {
	return Renderer{api: public.Join("payments", "v1"), orders: public.Join("orders", "v1"), inventory: public.Join("inventory", "v1"), customers: public.Join("customers", "v1")}
}

// Payment renders a payment. Links: self, order, reservation (inventory).
func (rs Renderer) Payment(p payment.Payment) paymentevents.Payment {
	return paymentevents.Payment{
		ID: p.ID, OrderID: p.OrderID,
		Amount: paymentevents.Money{Amount: p.Amount.Amount, Currency: p.Amount.Currency},
		Status: string(p.Status), Reason: p.Reason,
		ProviderReference: p.ProviderReference, RefundReference: p.RefundReference,
		CreatedAt: p.CreatedAt, CapturedAt: p.CapturedAt, DeclinedAt: p.DeclinedAt, RefundedAt: p.RefundedAt,
		Links: hal.Links{
			"self":        hal.To(rs.api.Href("payments", p.ID)),
			"order":       hal.To(rs.orders.Href("orders", p.OrderID)),
			"reservation": hal.To(rs.inventory.Href("reservations", p.OrderID)),
		},
	}
}

// Root is the REST model of /v1, the entry point.
type Root struct {
	Service string    `json:"service"`
	Links   hal.Links `json:"_links" links:"self,payments,payment,find-payments,payment-methods,contracts,failed-messages"`
}

func (rs Renderer) root() Root {
	return Root{Service: paymentevents.Service, Links: hal.Links{
		"self":                 hal.To(rs.api.Href()),
		"payments":             hal.To(rs.api.Href("payments")),
		"payment":              hal.One(hal.Link{Href: rs.api.Href("payments") + "/{id}", Templated: true}),
		"find-payments":        hal.One(hal.Find(rs.api.Href("payments"), "order_id", "status", "page", "size")),
		"payment-methods":      hal.To(rs.api.Href("payment-methods")),
		contracts.ContractsRel: hal.To(rs.api.Href("contracts")),
		failedmsg.Rel:          failedmsg.RootLink(rs.api),
	}}
}

// API serves the payments' HTTP resources.
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
// serves and what contracts/openapi/payments.yaml is generated from.
func (a *API) Table() []contracts.Route {
	type listParams struct {
		contracts.PageParams
		OrderID string `query:"order_id" description:"only the payments of this order"`
		Status  string `query:"status" enum:"captured,declined,refunded" description:"only payments in this status"`
	}
	return []contracts.Route{
		{Method: "GET", Path: "/v1", Slash: true, Handler: a.getRoot, Auth: auth.Anyone(), ID: "getRoot", Summary: "Entry point: links to the payments collection",
			Responses: []contracts.Response{{Status: http.StatusOK, Body: Root{}}}},
		{Method: "GET", Path: "/v1/payments", Handler: a.listPayments, Auth: auth.AnyOf(auth.RoleCustomer, auth.RoleStaff), ID: "listPayments", Summary: "Payments, filtered by order and status",
			Params:    listParams{},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: hal.Collection[paymentevents.Payment]{}}},
			Errors:    []int{http.StatusBadRequest}},
		{Method: "GET", Path: "/v1/payments/{id}", Handler: a.getPayment, Auth: auth.AnyOf(auth.RoleCustomer, auth.RoleStaff), ID: "getPayment", Summary: "One payment",
			Params:    contracts.IDParam{},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: paymentevents.Payment{}, Headers: []string{"ETag"}}},
			Errors:    []int{http.StatusNotFound}},
		{Method: "POST", Path: "/v1/payment-methods", Handler: a.addMethod, Auth: auth.AnyOf(auth.RoleCustomer, auth.RoleStaff), ID: "addPaymentMethod",
			Summary:     "Register a payment method; orders refer to it by id (payment_method_id)",
			Description: "The token stays in payments: no answer shows it, and order_placed carries only the method's id. A customer registers methods for themselves (customer_id from their token); staff name the customer.",
			Body:        methodRequest{},
			Responses:   []contracts.Response{{Status: http.StatusCreated, Body: PaymentMethod{}, Headers: []string{"Location"}}}},
		{Method: "GET", Path: "/v1/payment-methods", Handler: a.listMethods, Auth: auth.AnyOf(auth.RoleCustomer, auth.RoleStaff), ID: "listPaymentMethods",
			Summary:   "Payment methods, newest first (a customer's own; staff see all), without their tokens",
			Params:    contracts.PageParams{},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: hal.Collection[PaymentMethod]{}}},
			Errors:    []int{http.StatusBadRequest}},
		{Method: "GET", Path: "/v1/payment-methods/{id}", Handler: a.getMethod, Auth: auth.AnyOf(auth.RoleCustomer, auth.RoleStaff), ID: "getPaymentMethod",
			Summary:   "One payment method (without its token)",
			Params:    contracts.IDParam{},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: PaymentMethod{}}},
			Errors:    []int{http.StatusNotFound}},
	}
}

// Contract describes finance.payments for its manifests: this API's route
// table and the event types registered on events (the bus).
func (a *API) Contract(events contracts.Events) contracts.Service {
	return contracts.Service{Dir: "payments", Name: paymentevents.Service, Title: "Payments (finance.payments)",
		Description: "Charges an order once its stock is reserved, through a simulated provider (a payment method with token tok_decline is always declined), and refunds a captured payment exactly once when the order is cancelled.",
		Routes:      a.Table(), Events: events}
}

func (a *API) getRoot(w http.ResponseWriter, r *http.Request) {
	hal.Write(w, r, http.StatusOK, a.rs.root())
}

func (a *API) listPayments(w http.ResponseWriter, r *http.Request) {
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
		f.Customer = &own // a customer lists only the payments of their own orders
		if own == "" {
			none := "\x00"
			f.Customer = &none
		}
	}
	ps, total, err := a.store.Payments(r.Context(), f, p.Size, p.Offset())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]paymentevents.Payment, 0, len(ps))
	for _, pay := range ps {
		out = append(out, a.rs.Payment(pay))
	}
	hal.Write(w, r, http.StatusOK, hal.NewCollection("payments", a.rs.api.Href("payments"), q, out, p, total).
		Searchable(a.rs.api.Href(), "payments", a.rs.api.Href("payments"), "order_id", "status", "page", "size"))
}

func (a *API) getPayment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if len(id) > 36 {
		a.fail(w, r, payment.ErrNotFound)
		return
	}
	p, err := a.store.Payment(r.Context(), id)
	if err == nil {
		if _, confined := auth.Confined(r.Context()); confined {
			// Another customer's payment answers as a missing one.
			var owner string
			if owner, err = a.store.CustomerOf(r.Context(), p.OrderID); err == nil && !auth.Owns(r.Context(), owner) {
				err = payment.ErrNotFound
			}
		}
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpkit.SetETag(w, p.Version)
	hal.Write(w, r, http.StatusOK, a.rs.Payment(p))
}

// decodeFilter reads ?order_id= and ?status=captured|declined|refunded; 400 when invalid.
func decodeFilter(q url.Values) (payment.Filter, error) {
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
	f := payment.Filter{OrderID: one("order_id", payment.MaxIDLength), Status: payment.Status(one("status", 16))}
	switch f.Status {
	case "", payment.Captured, payment.Declined, payment.Refunded:
	default:
		errs.Add("status", "must be captured, declined or refunded")
	}
	if len(errs) > 0 {
		p := problem.BadRequest("invalid query parameters")
		p.Errors = errs
		return payment.Filter{}, p
	}
	return f, nil
}

// fail writes err as a problem: the one mapping of errors to HTTP statuses of this service.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	problem.Write(w, r, a.problemFor(r, err))
}

func (a *API) problemFor(r *http.Request, err error) *problem.Problem {
	switch {
	case errors.Is(err, payment.ErrNotFound):
		return problem.NotFound("no such payment")
	case errors.Is(err, errMethodNotFound):
		return problem.NotFound("no such payment method")
	case errors.Is(err, payment.ErrInvalid):
		return fieldError(err)
	}
	return httpkit.ErrorProblem(a.logger, r, err)
}
