// Package httpapi is the HAL REST API of crm.notifications, mounted by the gateway
// under /notifications:
//
//	GET    /v1                  service root (links to the collection)
//	GET    /v1/notifications         list (?page=, ?size=)
//	POST   /v1/notifications         create: 201, Location, ETag (event notification_created)
//	GET    /v1/notifications/{id}    read, with ETag
//
// Every error is a problem+json document; problemFor is the one mapping of
// errors to statuses (the infrastructure's are httpkit.ErrorProblem's).
package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/problem"
	"github.com/sagittarius-a/sagittarius/services/notifications/notification"
	"github.com/sagittarius-a/sagittarius/services/notifications/notificationevents"
)

// Renderer builds the REST model of a notification (also the entity of its
// events) with absolute links under the public base URL (the gateway).
type Renderer struct {
	api hal.Base // .../notifications/v1
}

// NewRenderer returns the Renderer for links under base (PUBLIC_BASE_URL).
func NewRenderer(base hal.Base) Renderer {
	return Renderer{api: base.Join("notifications", "v1")}
}

// Notification renders w. Links: self.
func (rd Renderer) Notification(w notification.Notification) notificationevents.Notification {
	return notificationevents.Notification{
		ID: w.ID, Name: w.Name, Version: w.Version, CreatedAt: w.CreatedAt,
		Links: hal.Links{"self": hal.To(rd.api.Href("notifications", w.ID))},
	}
}

// API serves the routes. It is safe for concurrent use.
type API struct {
	store  notification.Store
	render Renderer
	logger *slog.Logger
	now    func() time.Time
	newID  func() string
}

// New returns the API on store. logger may be nil.
func New(store notification.Store, render Renderer, logger *slog.Logger) *API {
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
// serves and what contracts/openapi/notifications.yaml is generated from.
func (a *API) Table() []contracts.Route {
	return []contracts.Route{
		{Method: "GET", Path: "/v1", Slash: true, Handler: a.root, ID: "getRoot", Summary: "Entry point: links to the notifications collection",
			Responses: []contracts.Response{{Status: http.StatusOK, Body: rootDoc{}}}},
		{Method: "GET", Path: "/v1/notifications", Handler: a.list, ID: "listNotifications", Summary: "List notifications, oldest first",
			Params:    contracts.PageParams{},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: hal.Collection[notificationevents.Notification]{}}},
			Errors:    []int{http.StatusBadRequest}},
		{Method: "POST", Path: "/v1/notifications", Handler: a.create, ID: "createNotification", Summary: "Create a notification (event notification_created)",
			Body:      createRequest{},
			Responses: []contracts.Response{{Status: http.StatusCreated, Body: notificationevents.Notification{}, Headers: []string{"Location", "ETag"}}}},
		{Method: "GET", Path: "/v1/notifications/{id}", Handler: a.get, ID: "getNotification", Summary: "One notification",
			Params:    contracts.IDParam{},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: notificationevents.Notification{}, Headers: []string{"ETag"}}},
			Errors:    []int{http.StatusNotFound}},
	}
}

// Contract describes crm.notifications for its manifests: this API's route table and
// the event types registered on events (the bus).
func (a *API) Contract(events contracts.Events) contracts.Service {
	return contracts.Service{Dir: "notifications", Name: notificationevents.Service, Title: "Notifications (crm.notifications)",
		Description: "Creates, reads and lists notifications.", Routes: a.Table(), Events: events}
}

// rootDoc is the entry point document.
type rootDoc struct {
	Service string    `json:"service"`
	Links   hal.Links `json:"_links" links:"self,notifications,find-notifications,notification,contracts"`
}

func (a *API) root(w http.ResponseWriter, r *http.Request) {
	links := hal.Links{}
	links.Set("self", a.render.api.Href())
	links.Set("notifications", a.render.api.Href("notifications"))
	links.SetLink("find-notifications", hal.Find(a.render.api.Href("notifications"), "page", "size"))
	links.SetLink("notification", hal.Link{Href: a.render.api.Href("notifications") + "/{id}", Templated: true})
	links.Set(contracts.ContractsRel, a.render.api.Href("contracts"))
	hal.Write(w, r, http.StatusOK, rootDoc{notificationevents.Service, links})
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, err := hal.ParsePage(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ws, total, err := a.store.List(r.Context(), notification.Filter{Limit: page.Size, Offset: page.Offset()})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	items := make([]notificationevents.Notification, len(ws))
	for i, x := range ws {
		items[i] = a.render.Notification(x)
	}
	coll := hal.NewCollection("notifications", a.render.api.Href("notifications"), q, items, page, total).
		Searchable(a.render.api.Href(), "notifications", a.render.api.Href("notifications"), "page", "size")
	hal.Write(w, r, http.StatusOK, coll)
}

// createRequest is the body of POST /v1/notifications.
type createRequest struct {
	Name string `json:"name" minLength:"1" maxLength:"200" description:"1 to 200 characters, trimmed"`
}

func (a *API) create(w http.ResponseWriter, r *http.Request) {
	var in createRequest
	if err := httpkit.DecodeJSON(w, r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	x, err := notification.New(a.newID(), in.Name, a.now())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.store.Create(r.Context(), x); err != nil {
		a.fail(w, r, err)
		return
	}
	a.write(w, r, http.StatusCreated, x)
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		a.fail(w, r, notification.ErrNotFound) // ids are UUIDs
		return
	}
	x, err := a.store.Get(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.write(w, r, http.StatusOK, x)
}

func (a *API) write(w http.ResponseWriter, r *http.Request, status int, x notification.Notification) {
	body := a.render.Notification(x)
	httpkit.SetETag(w, x.Version)
	if status == http.StatusCreated {
		w.Header().Set("Location", body.Links.Href("self"))
	}
	hal.Write(w, r, status, body)
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	problem.Write(w, r, a.problemFor(r, err))
}

// problemFor is the one mapping of the service's errors to problems; the
// rest (problems as they are, infrastructure errors) is httpkit.ErrorProblem's.
func (a *API) problemFor(r *http.Request, err error) *problem.Problem {
	var invalid *notification.ValidationError
	switch {
	case errors.As(err, &invalid):
		fields := make([]problem.FieldError, len(invalid.Fields))
		for i, f := range invalid.Fields {
			fields[i] = problem.FieldError{Field: "/" + f.Field, Message: f.Message}
		}
		return problem.Validation(fields...)
	case errors.Is(err, notification.ErrNotFound):
		return problem.NotFound("no notification with this id")
	default:
		return httpkit.ErrorProblem(a.logger, r, err)
	}
}
