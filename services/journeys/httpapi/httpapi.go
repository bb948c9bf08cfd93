// Package httpapi is the HAL REST API of ops.journeys, mounted by the gateway
// under /journeys. It only reads: journeys are made by events.
//
//	GET /v1                 service root
//	GET /v1/journeys        list (?state=, ?order_id=, ?customer_id=, ?page=, ?size=), most recently started first
//	GET /v1/journeys/{id}   one journey (id: its correlation id) with its timeline under _embedded.events
//
// Every error is a problem+json document; problemFor is the one mapping of
// errors to statuses. Reads are for operators (role operator or staff) once
// the kit enforces tokens.
package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/problem"
	"github.com/sagittarius-a/sagittarius/services/journeys/journey"
	"github.com/sagittarius-a/sagittarius/services/journeys/journeyevents"
)

// Renderer builds the REST model of a journey (also the entity of its events)
// with absolute links under the public base URL (the gateway).
type Renderer struct {
	base     hal.Base // PUBLIC_BASE_URL
	api      hal.Base // .../journeys/v1
	catalog  *journey.Catalog
	traceURL string // TRACE_UI_URL, with {trace_id}; "" for no trace link
}

// NewRenderer returns the Renderer for links under base (PUBLIC_BASE_URL).
// traceURL is a URL template of the trace UI with {trace_id} (TRACE_UI_URL),
// or "" for no trace link.
func NewRenderer(base hal.Base, catalog *journey.Catalog, traceURL string) Renderer {
	return Renderer{base: base, api: base.Join("journeys", "v1"), catalog: catalog, traceURL: traceURL}
}

// Summary renders j without its timeline: the journey of the collection and
// of journey_stuck and journey_resumed.
//
// Links: self, collection; order, customer, reservation, payment, shipment
// (the resources its events touched, through the gateway); failed-messages
// (one templated link per service involved); trace (when the trace UI is
// configured and the journey has a trace id).
func (rd Renderer) Summary(j journey.Journey) journeyevents.Journey {
	out := journeyevents.Journey{
		ID: j.ID, Kind: j.Kind, State: j.State, WaitingFor: j.WaitingFor(), StuckStep: j.StuckStep,
		Waiting: []journeyevents.Wait{}, StartedAt: j.StartedAt, UpdatedAt: j.UpdatedAt, EventCount: j.EventCount,
		TraceID: j.TraceID, IDs: j.IDs, Version: j.Version, Links: hal.Links{},
	}
	if out.WaitingFor == nil {
		out.WaitingFor = []string{}
	}
	if out.IDs == nil {
		out.IDs = map[string][]string{}
	}
	if !j.Since.IsZero() {
		since := j.Since
		out.Since = &since
	}
	for _, w := range j.Waiting {
		out.Waiting = append(out.Waiting, journeyevents.Wait{Step: w.Step, Expect: w.Expect, Since: w.Since, Deadline: w.Deadline, Overdue: w.Overdue})
	}
	out.Links.Set("self", rd.api.Href("journeys", j.ID))
	out.Links.Set("collection", rd.api.Href("journeys"))
	for rel, path := range j.Links {
		out.Links.Set(rel, rd.base.Href(strings.Split(path, "/")...))
	}
	var failed []hal.Link
	for _, p := range j.Publishers {
		if dir, ok := rd.catalog.Services[p]; ok {
			failed = append(failed, hal.Link{Href: rd.base.Href(dir, "v1", "failed-messages") + "{?type,group,status,from,to}",
				Templated: true, Title: "failed messages of " + p})
		}
	}
	if len(failed) > 0 {
		out.Links["failed-messages"] = hal.Many(failed...)
	}
	if rd.traceURL != "" && j.TraceID != "" {
		out.Links.SetLink("trace", hal.Link{Href: strings.ReplaceAll(rd.traceURL, "{trace_id}", j.TraceID), Type: "text/html", Title: "the journey's trace"})
	}
	return out
}

// Journey renders j with its timeline under _embedded.events.
func (rd Renderer) Journey(j journey.Journey) journeyevents.Journey {
	out := rd.Summary(j)
	events := make([]journeyevents.Event, len(j.Events))
	for i, e := range j.Events {
		events[i] = journeyevents.Event{UUID: e.UUID, Type: e.Type, Publisher: e.Publisher, FiredAt: e.FiredAt,
			CausationID: e.CausationID, Actor: e.Actor, TraceID: e.TraceID}
	}
	out.Embedded = &journeyevents.JourneyEmbedded{Events: events}
	return out
}

// API serves the routes. It is safe for concurrent use.
type API struct {
	store  journey.Store
	render Renderer
	logger *slog.Logger
}

// New returns the API on store. logger may be nil.
func New(store journey.Store, render Renderer, logger *slog.Logger) *API {
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
// serves and what contracts/openapi/journeys.yaml is generated from.
func (a *API) Table() []contracts.Route {
	type listParams struct {
		contracts.PageParams
		State      string `query:"state" enum:"in_progress,stuck,completed,untracked,awaiting_dispatch,awaiting_delivery" description:"only journeys in this state"`
		OrderID    string `query:"order_id" format:"uuid" description:"only journeys whose events carry this order id"`
		CustomerID string `query:"customer_id" format:"uuid" description:"only journeys whose events carry this customer id"`
	}
	return []contracts.Route{
		{Method: "GET", Path: "/v1", Slash: true, Handler: a.root, Auth: auth.Anyone(), ID: "getRoot", Summary: "Entry point: links to the journeys",
			Responses: []contracts.Response{{Status: http.StatusOK, Body: rootDoc{}}}},
		{Method: "GET", Path: "/v1/journeys", Handler: a.list, Auth: auth.AnyOf(auth.RoleStaff, auth.RoleOperator), ID: "listJourneys", Summary: "Journeys, filtered by state, order and customer, most recently started first",
			Params:    listParams{},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: hal.Collection[journeyevents.Journey]{}}},
			Errors:    []int{http.StatusBadRequest}},
		{Method: "GET", Path: "/v1/journeys/{id}", Handler: a.get, Auth: auth.AnyOf(auth.RoleStaff, auth.RoleOperator), ID: "getJourney", Summary: "One journey (by its correlation id) with its timeline",
			Params:    contracts.IDParam{},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: journeyevents.Journey{}}},
			Errors:    []int{http.StatusNotFound}},
	}
}

// Contract describes ops.journeys for its manifests: this API's route table
// and the event types registered on events (the bus): as consumed, every
// event type of the platform (eventapi.PlatformEvents, the known types of its
// catch-all).
func (a *API) Contract(events contracts.Events) contracts.Service {
	return contracts.Service{Dir: "journeys", Name: journeyevents.Service, Title: "Journeys (ops.journeys)",
		Description: "The journey of every business transaction: every event carrying one correlation id, in order of occurrence, " +
			"with what it waits for next (declared as data), and whether it is in progress, completed or stuck.",
		Routes: a.Table(), Events: events}
}

// rootDoc is the entry point document.
type rootDoc struct {
	Service string    `json:"service"`
	Links   hal.Links `json:"_links" links:"self,journeys,find-journeys,journey,stuck-journeys,contracts"`
}

func (a *API) root(w http.ResponseWriter, r *http.Request) {
	api := a.render.api
	links := hal.Links{}
	links.Set("self", api.Href())
	links.Set("journeys", api.Href("journeys"))
	links.SetLink("find-journeys", hal.Link{Href: api.Href("journeys") + "{?state,order_id,customer_id,page,size}", Templated: true,
		Title: "journeys by state, order and customer"})
	links.SetLink("journey", hal.Link{Href: api.Href("journeys") + "/{id}", Templated: true})
	links.SetLink("stuck-journeys", hal.Link{Href: api.HrefQuery(url.Values{"state": {journey.StateStuck}}, "journeys"), Title: "journeys stuck on a step"})
	links.Set(contracts.ContractsRel, api.Href("contracts"))
	hal.Write(w, r, http.StatusOK, rootDoc{journeyevents.Service, links})
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, page, err := a.decodeListQuery(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	js, total, err := a.store.List(r.Context(), f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	items := make([]journeyevents.Journey, len(js))
	for i, j := range js {
		items[i] = a.render.Summary(j)
	}
	api := a.render.api
	coll := hal.NewCollection("journeys", api.Href("journeys"), q, items, page, total).
		Searchable(api.Href(), "journeys", api.Href("journeys"), "state", "order_id", "customer_id", "page", "size")
	hal.Write(w, r, http.StatusOK, coll)
}

// decodeListQuery reads ?state, ?order_id, ?customer_id, ?page and ?size.
// Errors are 400 problems naming the parameter.
func (a *API) decodeListQuery(q url.Values) (journey.Filter, hal.Page, error) {
	page, err := hal.ParsePage(q)
	if err != nil {
		return journey.Filter{}, hal.Page{}, err
	}
	f := journey.Filter{Limit: page.Size, Offset: page.Offset()}
	var errs problem.Fields
	if vs, ok := q["state"]; ok {
		states := a.render.catalog.States()
		if errs.Check(len(vs) == 1 && slices.Contains(states, vs[0]), "state", "must be given once: one of "+strings.Join(states, ", ")) {
			f.State = vs[0]
		}
	}
	for name, dst := range map[string]*string{"order_id": &f.OrderID, "customer_id": &f.CustomerID} {
		if vs, ok := q[name]; ok {
			_, perr := uuid.Parse(firstOf(vs))
			if errs.Check(len(vs) == 1 && perr == nil && len(vs[0]) == 36, name, "must be given once: a UUID") {
				*dst = strings.ToLower(vs[0])
			}
		}
	}
	if len(errs) > 0 {
		p := problem.BadRequest("invalid query parameters")
		p.Errors = errs
		return journey.Filter{}, hal.Page{}, p
	}
	return f, page, nil
}

func firstOf(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "" || len(id) > 200 || !utf8.ValidString(id) {
		a.fail(w, r, journey.ErrNotFound)
		return
	}
	j, err := a.store.Get(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpkit.SetETag(w, j.Version)
	hal.Write(w, r, http.StatusOK, a.render.Journey(j))
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	problem.Write(w, r, a.problemFor(r, err))
}

// problemFor is the one mapping of errors to problems.
func (a *API) problemFor(r *http.Request, err error) *problem.Problem {
	var p *problem.Problem
	switch {
	case errors.As(err, &p):
		return p
	case errors.Is(err, journey.ErrNotFound):
		return problem.NotFound("no journey with this id (the correlation id of its events)")
	default:
		return httpkit.ErrorProblem(a.logger, r, err)
	}
}
