package contracts

import (
	"net/http"

	"github.com/sagittarius-a/sagittarius/internal/auth"
	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/problem"
)

// ContractsPath is where every service serves its manifests, under its API
// version: GET /v1/contracts (a HAL index), GET /v1/contracts/openapi and
// GET /v1/contracts/asyncapi (the documents as application/json). Through
// the gateway: http://127.0.0.1:8080/orders/v1/contracts/openapi.
const ContractsPath = "/v1/contracts"

// ContractsRel is the link relation, on a service's HAL root, of its
// contracts index.
const ContractsRel = "contracts"

// Index is the HAL document at ContractsPath: links to the manifests.
type Index struct {
	Links hal.Links `json:"_links" links:"self,openapi,asyncapi?"`
}

// ManifestParams are the parameters of GET /v1/contracts/{name}.
type ManifestParams struct {
	Name string `path:"name" enum:"openapi,asyncapi" description:"openapi (OpenAPI 3.0, this API) or asyncapi (AsyncAPI 2.6, the events the service publishes and consumes)"`
}

// Mount generates the manifests of s and serves them on rt under
// ContractsPath, with links built on api (the service's absolute API base,
// e.g. base.Join("orders", "v1"); the zero Base gives relative links). It
// returns the generation error, if any; call it once, after every route and
// event handler is registered. The service links ContractsRel from its HAL
// root to api.Href("contracts").
func Mount(rt Router, s Service, api hal.Base) (Manifests, error) {
	m, err := Generate(s)
	if err != nil {
		return Manifests{}, err
	}
	HandleRoutes(rt, contractRoutes(s, &contractsHandler{m: m, api: api}))
	return m, nil
}

type contractsHandler struct {
	m   Manifests
	api hal.Base
}

func (h *contractsHandler) index(w http.ResponseWriter, r *http.Request) {
	links := hal.Links{}
	links.Set("self", h.api.Href("contracts"))
	links.SetLink("openapi", hal.Link{Href: h.api.Href("contracts", "openapi"), Type: "application/json", Title: "OpenAPI 3.0"})
	if h.m.AsyncAPI != nil {
		links.SetLink("asyncapi", hal.Link{Href: h.api.Href("contracts", "asyncapi"), Type: "application/json", Title: "AsyncAPI 2.6"})
	}
	hal.Write(w, r, http.StatusOK, Index{Links: links})
}

func (h *contractsHandler) manifest(w http.ResponseWriter, r *http.Request) {
	var doc []byte
	switch r.PathValue("name") {
	case "openapi":
		doc = h.m.OpenAPI
	case "asyncapi":
		doc = h.m.AsyncAPI
	}
	if doc == nil {
		problem.Write(w, r, problem.NotFound("no such contract: want openapi or asyncapi"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(doc)
}

// contractRoutes returns the routes of ContractsPath, served by h (nil when
// only documenting them).
func contractRoutes(s Service, h *contractsHandler) []Route {
	var index, manifest http.HandlerFunc
	if h != nil {
		index, manifest = h.index, h.manifest
	}
	links := hal.Links{}
	links.Set("self", "http://127.0.0.1:8080/"+s.Dir+ContractsPath)
	links.SetLink("openapi", hal.Link{Href: "http://127.0.0.1:8080/" + s.Dir + ContractsPath + "/openapi", Type: "application/json", Title: "OpenAPI 3.0"})
	if s.Events != nil {
		links.SetLink("asyncapi", hal.Link{Href: "http://127.0.0.1:8080/" + s.Dir + ContractsPath + "/asyncapi", Type: "application/json", Title: "AsyncAPI 2.6"})
	}
	return []Route{
		{
			Method: http.MethodGet, Path: ContractsPath, Handler: index,
			Auth: auth.Anyone(),
			ID:   "listContracts", Summary: "Links to this service's contract manifests", Tag: "contracts",
			Responses: []Response{{Status: http.StatusOK, Body: Index{}, Example: Index{Links: links}}},
		},
		{
			Method: http.MethodGet, Path: ContractsPath + "/{name}", Handler: manifest,
			Auth: auth.Anyone(),
			ID:   "getContract", Summary: "One contract manifest of this service, as JSON", Tag: "contracts",
			Description: "The same document as contracts/openapi/" + s.Dir + ".yaml or contracts/asyncapi/" + s.Dir + ".yaml in the repository, generated at start from the running code.",
			Params:      ManifestParams{},
			Responses:   []Response{{Status: http.StatusOK, Body: map[string]any{}, ContentType: "application/json", Example: map[string]any{"openapi": OpenAPIVersion}}},
			Errors:      []int{http.StatusNotFound},
		},
	}
}
