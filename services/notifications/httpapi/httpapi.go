// Package httpapi is the HAL REST API of crm.notifications, mounted by the
// gateway under /notifications:
//
//	GET    /v1                      service root (links to the collection)
//	GET    /v1/notifications        list (?customer_id=, ?status=, ?page=, ?size=), oldest first
//	GET    /v1/notifications/{id}   read, with ETag
//
// Notifications are recorded from events (eventapi), never through the API.
// Every error is a problem+json document; problemFor is the one mapping of
// errors to statuses (the infrastructure's are httpkit.ErrorProblem's).
package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/failedmsg"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/problem"
	"github.com/sagittarius-a/sagittarius/services/notifications/notification"
	"github.com/sagittarius-a/sagittarius/services/notifications/notificationevents"
)

// Renderer builds the REST model of a notification (also the entity of its
// events) with absolute links under the public base URL (the gateway).
type Renderer struct {
	api       hal.Base // .../notifications/v1
	orders    hal.Base // .../orders/v1
	customers hal.Base // .../customers/v1
}

// NewRenderer returns the Renderer for links under base (PUBLIC_BASE_URL).
func NewRenderer(base hal.Base) Renderer {
	return Renderer{api: base.Join("notifications", "v1"), orders: base.Join("orders", "v1"), customers: base.Join("customers", "v1")}
}

// Notification renders n. Links: self, order, customer (once known).
func (rd Renderer) Notification(n notification.Notification) notificationevents.Notification {
	links := hal.Links{
		"self":  hal.To(rd.api.Href("notifications", n.ID)),
		"order": hal.To(rd.orders.Href("orders", n.OrderID)),
	}
	if n.CustomerID != "" {
		links.Set("customer", rd.customers.Href("customers", n.CustomerID))
	}
	return notificationevents.Notification{
		ID: n.ID, Kind: string(n.Kind), OrderID: n.OrderID, CustomerID: n.CustomerID, Channel: n.Channel,
		Recipient: n.Recipient, Subject: n.Subject, Text: n.Text, Status: string(n.Status), Reason: n.Reason,
		Attempts: n.Attempts, NextAttemptAt: n.NextAttemptAt, EventID: n.EventID, Version: n.Version,
		CreatedAt: n.CreatedAt, SentAt: n.SentAt, Links: links,
	}
}

// API serves the routes. It is safe for concurrent use.
type API struct {
	store  notification.Store
	render Renderer
	logger *slog.Logger
}

// New returns the API on store. logger may be nil.
func New(store notification.Store, render Renderer, logger *slog.Logger) *API {
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
// serves and what contracts/openapi/notifications.yaml is generated from.
func (a *API) Table() []contracts.Route {
	type listParams struct {
		contracts.PageParams
		CustomerID string `query:"customer_id" description:"only the notifications of this customer"`
		Status     string `query:"status" enum:"pending,sending,sent,not_sent,failed" description:"only notifications in this status"`
	}
	return []contracts.Route{
		{Method: "GET", Path: "/v1", Slash: true, Handler: a.root, Auth: auth.Anyone(), ID: "getRoot", Summary: "Entry point: links to the notifications collection",
			Responses: []contracts.Response{{Status: http.StatusOK, Body: rootDoc{}}}},
		{Method: "GET", Path: "/v1/notifications", Handler: a.list, Auth: auth.AnyOf(auth.RoleCustomer, auth.RoleStaff, auth.RoleOperator), ID: "listNotifications", Summary: "List notifications, oldest first, filtered by customer and status",
			Params:    listParams{},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: hal.Collection[notificationevents.Notification]{}}},
			Errors:    []int{http.StatusBadRequest}},
		{Method: "GET", Path: "/v1/notifications/{id}", Handler: a.get, Auth: auth.AnyOf(auth.RoleCustomer, auth.RoleStaff, auth.RoleOperator), ID: "getNotification", Summary: "One notification",
			Params:    contracts.IDParam{},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: notificationevents.Notification{}, Headers: []string{"ETag"}}},
			Errors:    []int{http.StatusNotFound}},
	}
}

// Contract describes crm.notifications for its manifests: this API's route
// table and the event types registered on events (the bus).
func (a *API) Contract(events contracts.Events) contracts.Service {
	return contracts.Service{Dir: "notifications", Name: notificationevents.Service, Title: "Notifications (crm.notifications)",
		Description: "Records, for each customer, the e-mail a shop sends at each step of an order's life (confirmed, cancelled with its reason, " +
			"shipped, delivered, refunded), one per order and step, and sends it through an SMTP server after the commit, at most once. " +
			"Without a server it records the notification as not_sent and says why.",
		Routes: a.Table(), Events: events}
}

// rootDoc is the entry point document.
type rootDoc struct {
	Service string    `json:"service"`
	Links   hal.Links `json:"_links" links:"self,notifications,find-notifications,notification,contracts,failed-messages"`
}

func (a *API) root(w http.ResponseWriter, r *http.Request) {
	links := hal.Links{}
	links.Set("self", a.render.api.Href())
	links.Set("notifications", a.render.api.Href("notifications"))
	links.SetLink("find-notifications", hal.Find(a.render.api.Href("notifications"), "customer_id", "status", "page", "size"))
	links.SetLink("notification", hal.Link{Href: a.render.api.Href("notifications") + "/{id}", Templated: true})
	links.Set(contracts.ContractsRel, a.render.api.Href("contracts"))
	links[failedmsg.Rel] = failedmsg.RootLink(a.render.api)
	hal.Write(w, r, http.StatusOK, rootDoc{notificationevents.Service, links})
}

// decodeListQuery reads ?customer_id, ?status, ?page and ?size; errors are
// 400 problems naming the parameter.
func decodeListQuery(q url.Values) (notification.Filter, hal.Page, error) {
	page, err := hal.ParsePage(q)
	if err != nil {
		return notification.Filter{}, hal.Page{}, err
	}
	f := notification.Filter{Limit: page.Size, Offset: page.Offset()}
	var errs problem.Fields
	if vs, ok := q["customer_id"]; ok {
		if errs.Check(len(vs) == 1 && vs[0] != "" && len(vs[0]) <= 64 && utf8.ValidString(vs[0]), "customer_id", "must be given once, 1 to 64 bytes") {
			f.CustomerID = vs[0]
		}
	}
	if vs, ok := q["status"]; ok {
		if errs.Check(len(vs) == 1 && notification.Status(vs[0]).Valid(), "status", "must be given once: pending, sending, sent, not_sent or failed") {
			f.Status = notification.Status(vs[0])
		}
	}
	if len(errs) > 0 {
		p := problem.BadRequest("invalid query parameters")
		p.Errors = errs
		return notification.Filter{}, hal.Page{}, p
	}
	return f, page, nil
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, page, err := decodeListQuery(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if own, confined := auth.Confined(r.Context()); confined {
		// A customer lists only their own notifications; asking for another
		// customer's gives an empty page, as for a customer without any.
		if own == "" || (f.CustomerID != "" && f.CustomerID != own) {
			own = "-" // no customer has this id
		}
		f.CustomerID = own
	}
	ns, total, err := a.store.List(r.Context(), f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	items := make([]notificationevents.Notification, len(ns))
	for i, n := range ns {
		items[i] = a.render.Notification(n)
	}
	coll := hal.NewCollection("notifications", a.render.api.Href("notifications"), q, items, page, total).
		Searchable(a.render.api.Href(), "notifications", a.render.api.Href("notifications"), "customer_id", "status", "page", "size")
	hal.Write(w, r, http.StatusOK, coll)
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		a.fail(w, r, notification.ErrNotFound) // ids are UUIDs
		return
	}
	n, err := a.store.Get(r.Context(), id)
	if err == nil && !auth.Owns(r.Context(), n.CustomerID) {
		err = notification.ErrNotFound // another customer's: as if it did not exist
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpkit.SetETag(w, n.Version)
	hal.Write(w, r, http.StatusOK, a.render.Notification(n))
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	problem.Write(w, r, a.problemFor(r, err))
}

// problemFor is the one mapping of the service's errors to problems; the
// rest (problems as they are, infrastructure errors) is httpkit.ErrorProblem's.
func (a *API) problemFor(r *http.Request, err error) *problem.Problem {
	switch {
	case errors.Is(err, notification.ErrNotFound):
		return problem.NotFound("no notification with this id")
	default:
		return httpkit.ErrorProblem(a.logger, r, err)
	}
}
