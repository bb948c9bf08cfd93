// Package httpapi is the HAL REST API of catalog.products, mounted by the
// gateway under /catalog:
//
//	GET    /v1                    service root (links to the collections)
//	GET    /v1/products           list (?status=, ?sku=, ?page=, ?size=)
//	POST   /v1/products           add: 201, Location, ETag
//	GET    /v1/products/{id}      read, with ETag
//	PATCH  /v1/products/{id}      change name, description, price; {"status":"retired"} retires it
//	                              (If-Match optional, 412 when stale; 409 once retired)
//	GET    /health                200 or 503 problem
//
// Every error is a problem+json document; problemFor is the one mapping of
// errors to statuses.
package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/failedmsg"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/httpkit"
	"github.com/sagittarius-a/sagittarius/internal/problem"
	"github.com/sagittarius-a/sagittarius/services/catalog/product"
	"github.com/sagittarius-a/sagittarius/services/catalog/productevents"
)

// Renderer builds the REST model of a product (also the entity of its
// events) with absolute links under the public base URL (the gateway).
type Renderer struct {
	api       hal.Base // .../catalog/v1
	inventory hal.Base // .../inventory/v1
}

// NewRenderer returns the Renderer for links under base (PUBLIC_BASE_URL).
func NewRenderer(base hal.Base) Renderer {
	return Renderer{api: base.Join("catalog", "v1"), inventory: base.Join("inventory", "v1")}
}

// Product renders p. Links: self, stock-item (its stock in inventory).
func (rd Renderer) Product(p product.Product) productevents.Product {
	return productevents.Product{
		ID: p.ID, SKU: p.SKU, Name: p.Name, Description: p.Description,
		Price:  productevents.Money{Amount: p.Price.Amount, Currency: p.Price.Currency},
		Status: string(p.Status), Version: p.Version, AddedAt: p.AddedAt, UpdatedAt: p.UpdatedAt,
		Links: hal.Links{
			"self":       hal.To(rd.api.Href("products", p.ID)),
			"stock-item": hal.To(rd.inventory.Href("stock-items", p.ID)),
		},
	}
}

// API serves the routes. It is safe for concurrent use.
type API struct {
	store  product.Store
	render Renderer
	logger *slog.Logger
	now    func() time.Time
	newID  func() string
}

// New returns the API on store. logger may be nil.
func New(store product.Store, render Renderer, logger *slog.Logger) *API {
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
// serves and what contracts/openapi/catalog.yaml is generated from.
func (a *API) Table() []contracts.Route {
	type listParams struct {
		contracts.PageParams
		Status string `query:"status" enum:"active,retired" description:"only products in this status"`
		SKU    string `query:"sku" description:"only the product with this SKU"`
	}
	type itemParams struct {
		contracts.IDParam
		contracts.IfMatch
	}
	return []contracts.Route{
		{Method: "GET", Path: "/v1", Slash: true, Handler: a.root, Auth: auth.Anyone(), ID: "getRoot", Summary: "Entry point: links to the products collection",
			Responses: []contracts.Response{{Status: http.StatusOK, Body: rootDoc{}}}},
		{Method: "GET", Path: "/v1/products", Handler: a.list, Auth: auth.Anyone(), ID: "listProducts", Summary: "List products, filtered by status and SKU",
			Params:    listParams{},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: hal.Collection[productevents.Product]{}}},
			Errors:    []int{http.StatusBadRequest}},
		{Method: "POST", Path: "/v1/products", Handler: a.add, Auth: auth.AnyOf(auth.RoleStaff), ID: "addProduct", Summary: "Add a product (event product_added)",
			Body:      addRequest{},
			Responses: []contracts.Response{{Status: http.StatusCreated, Body: productevents.Product{}, Headers: []string{"Location", "ETag"}}},
			Errors:    []int{http.StatusConflict}},
		{Method: "GET", Path: "/v1/products/{id}", Handler: a.get, Auth: auth.Anyone(), ID: "getProduct", Summary: "One product",
			Params:    contracts.IDParam{},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: productevents.Product{}, Headers: []string{"ETag"}}},
			Errors:    []int{http.StatusNotFound}},
		{Method: "PATCH", Path: "/v1/products/{id}", Handler: a.patch, Auth: auth.AnyOf(auth.RoleStaff), ID: "updateProduct",
			Summary:     "Change a product's name, description or price, or retire it (events product_updated, product_retired)",
			Description: `{"status":"retired"} retires the product; a retired product can no longer change (409).`,
			Params:      itemParams{}, Body: patchRequest{},
			Responses: []contracts.Response{{Status: http.StatusOK, Body: productevents.Product{}, Headers: []string{"ETag"}}},
			Errors:    []int{http.StatusNotFound, http.StatusConflict, http.StatusPreconditionFailed}},
	}
}

// Contract describes catalog.products for its manifests: this API's route
// table and the event types registered on events (the bus).
func (a *API) Contract(events contracts.Events) contracts.Service {
	return contracts.Service{Dir: "catalog", Name: productevents.Service, Title: "Catalog (catalog.products)",
		Description: "Adds products, changes their details and price, lists and retires them. Orders and inventory keep read models fed by its events.",
		Routes:      a.Table(), Events: events}
}

// rootDoc is the entry point document.
type rootDoc struct {
	Service string    `json:"service"`
	Links   hal.Links `json:"_links" links:"self,products,find-products,product,contracts,failed-messages"`
}

func (a *API) root(w http.ResponseWriter, r *http.Request) {
	links := hal.Links{}
	links.Set("self", a.render.api.Href())
	links.Set("products", a.render.api.Href("products"))
	find := hal.Find(a.render.api.Href("products"), "status", "sku", "page", "size")
	find.Title = "products by status and SKU"
	links.SetLink("find-products", find)
	links.SetLink("product", hal.Link{Href: a.render.api.Href("products") + "/{id}", Templated: true})
	links.Set(contracts.ContractsRel, a.render.api.Href("contracts"))
	links[failedmsg.Rel] = failedmsg.RootLink(a.render.api)
	hal.Write(w, r, http.StatusOK, rootDoc{productevents.Service, links})
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, page, err := decodeListQuery(q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ps, total, err := a.store.List(r.Context(), f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	items := make([]productevents.Product, len(ps))
	for i, p := range ps {
		items[i] = a.render.Product(p)
	}
	coll := hal.NewCollection("products", a.render.api.Href("products"), q, items, page, total).
		Searchable(a.render.api.Href(), "products", a.render.api.Href("products"), "status", "sku", "page", "size")
	hal.Write(w, r, http.StatusOK, coll)
}

func (a *API) add(w http.ResponseWriter, r *http.Request) {
	in, err := decodeAdd(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p, err := product.Add(a.newID(), in.SKU, in.Name, in.Description,
		product.Money{Amount: in.Price.Amount, Currency: in.Price.Currency}, a.now())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.store.Create(r.Context(), p); err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeProduct(w, r, http.StatusCreated, p)
}

// productID returns the {id} path value, or ErrNotFound when it cannot be a
// product id (ids are UUIDs).
func productID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return "", product.ErrNotFound
	}
	return id, nil
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	id, err := productID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p, err := a.store.Get(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeProduct(w, r, http.StatusOK, p)
}

func (a *API) patch(w http.ResponseWriter, r *http.Request) {
	id, err := productID(r)
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
	p, err := a.store.Update(r.Context(), id, func(p *product.Product) (product.Outcome, error) {
		if !pre.Allows(p.Version) {
			return product.Unchanged, product.ErrStale
		}
		return p.Apply(ch, a.now())
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeProduct(w, r, http.StatusOK, p)
}

func (a *API) writeProduct(w http.ResponseWriter, r *http.Request, status int, p product.Product) {
	body := a.render.Product(p)
	httpkit.SetETag(w, p.Version)
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
	var invalid *product.ValidationError
	switch {
	case errors.As(err, &invalid):
		fields := make([]problem.FieldError, len(invalid.Fields))
		for i, f := range invalid.Fields {
			fields[i] = problem.FieldError{Field: "/" + f.Field, Message: f.Message}
		}
		return problem.Validation(fields...)
	case errors.Is(err, product.ErrNotFound):
		return problem.NotFound("no product with this id")
	case errors.Is(err, product.ErrSKUTaken):
		return problem.Conflict("another product has this SKU")
	case errors.Is(err, product.ErrRetired):
		return problem.Conflict("the product is retired and can no longer change")
	case errors.Is(err, product.ErrStale):
		return problem.PreconditionFailed("the product has changed since you read it; GET it again for the current ETag")
	default:
		return httpkit.ErrorProblem(a.logger, r, err)
	}
}
