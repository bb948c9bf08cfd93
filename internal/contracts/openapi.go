package contracts

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/swaggest/openapi-go"
	"github.com/swaggest/openapi-go/openapi3"

	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/problem"
)

// OpenAPIVersion is the version of the generated OpenAPI documents.
const OpenAPIVersion = "3.0.3"

// knownHeaders describes the response headers routes may name.
var knownHeaders = map[string]string{
	"Location":            "URL of the created resource (absolute, through the gateway)",
	"ETag":                "the resource's version as a strong entity tag; send it back in If-Match to change the resource",
	"Idempotent-Replayed": "true when this answer replays the first answer given for the same Idempotency-Key",
	"Allow":               "the methods the resource supports",
	"Cache-Control":       "caching directives",
}

// problemDescriptions explains what each problem status means on this platform.
var problemDescriptions = map[int]string{
	http.StatusBadRequest:            "the request cannot be read: malformed JSON, an empty body, or an invalid query parameter (errors names it)",
	http.StatusUnauthorized:          "no access token, or one that is malformed, expired, not yet valid, badly signed or from another issuer or audience (WWW-Authenticate: Bearer says which)",
	http.StatusForbidden:             "the access token lacks the role or scope this operation needs (WWW-Authenticate: Bearer error=\"insufficient_scope\")",
	http.StatusNotFound:              "no resource with this id",
	http.StatusNotAcceptable:         "the Accept header admits no JSON: this API serves application/hal+json, application/json and application/problem+json",
	http.StatusConflict:              "the resource's current state forbids the change",
	http.StatusPreconditionFailed:    "If-Match does not match the resource's current ETag: read it again",
	http.StatusRequestEntityTooLarge: "the request body is larger than the limit",
	http.StatusUnsupportedMediaType:  "Content-Type is not application/json (charset utf-8)",
	http.StatusUnprocessableEntity:   "the body is well-formed JSON but invalid: errors lists each field (JSON pointer) and what is wrong",
	http.StatusInternalServerError:   "an unexpected failure; the details are in the service's log under the request id",
	http.StatusServiceUnavailable:    "a dependency (database or broker) is unavailable",
}

// databaseUnavailable describes the 503 that every operation of a service
// with a database documents (see Service.hasDatabase): its error mapping
// answers 503 while the database does not answer (mysqldb.IsUnavailable),
// and the gateway answers 503 for every path of a service that is down.
const databaseUnavailable = "the service's database does not answer, or (from the gateway) the service is down; retry later"

// openAPI generates the OpenAPI document of s as indented JSON.
func openAPI(s Service) ([]byte, error) {
	r := openapi3.NewReflector()
	configure(&r.Reflector)
	spec := r.SpecEns()
	spec.Openapi = OpenAPIVersion
	spec.Info.Title = s.Title
	spec.Info.Version = "1.0.0"
	spec.Info.WithDescription(infoDescription(s))
	spec.Info.WithContact(openapi3.Contact{Name: &contact.Name, URL: &contact.URL, Email: &contact.Email})
	spec.Info.WithLicense(openapi3.License{Name: license.Name})
	spec.Servers = []openapi3.Server{{URL: s.prefix()}}
	if s.prefix() == "/" {
		spec.Servers[0].WithDescription("the API gateway")
	} else {
		spec.Servers[0].WithDescription("the API gateway, which serves this API under " + s.prefix())
	}

	routes := append([]Route{}, s.Routes...)
	if !s.OmitContractRoutes {
		routes = append(routes, contractRoutes(s, nil)...)
	}
	database := s.hasDatabase()
	tags := map[string]bool{}
	for _, rt := range routes {
		tag := rt.Tag
		if tag == "" {
			tag = defaultTag(rt.Path)
		}
		tags[tag] = true
		if err := addOperation(r, rt, tag, database); err != nil {
			return nil, fmt.Errorf("%s: %w", rt.Pattern(), err)
		}
	}
	names := make([]string, 0, len(tags))
	for t := range tags {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, t := range names {
		spec.Tags = append(spec.Tags, openapi3.Tag{Name: t})
	}
	addSecurity(spec, routes)
	addProblemResponses(spec, routes, database)
	if err := addExamples(spec, routes, "http://127.0.0.1:8080"+strings.TrimSuffix(s.prefix(), "/")+"/v1"); err != nil {
		return nil, err
	}
	return json.MarshalIndent(spec, "", "  ")
}

func infoDescription(s Service) string {
	d := strings.TrimSpace(s.Description)
	if d != "" {
		d += "\n\n"
	}
	return d + "Generated from the route table and Go types of the " + s.Name + " handlers (internal/contracts). " +
		"Resources are application/hal+json with _links (self and related resources, absolute URLs through the gateway); " +
		"collections are paginated (page, size; links self, first, last, prev, next) with items under _embedded. " +
		"Errors are RFC 9457 application/problem+json. Every answer carries X-Request-Id (the request's id, " +
		"generated when the client sends none), which is also the correlation id of the events the request causes; " +
		"a W3C traceparent header is honoured."
}

// defaultTag is the first path segment after the version: /v1/orders/{id} -> orders.
func defaultTag(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) > 0 && len(segs[0]) > 1 && segs[0][0] == 'v' {
		if _, err := strconv.Atoi(segs[0][1:]); err == nil {
			segs = segs[1:]
		}
	}
	if len(segs) == 0 || segs[0] == "" || strings.HasPrefix(segs[0], "{") {
		return "root"
	}
	return segs[0]
}

func addOperation(r *openapi3.Reflector, rt Route, tag string, database bool) error {
	oc, err := r.NewOperationContext(rt.Method, rt.Path)
	if err != nil {
		return err
	}
	oc.SetID(rt.ID)
	oc.SetSummary(rt.Summary)
	if rt.Description != "" {
		oc.SetDescription(rt.Description)
	}
	oc.SetTags(tag)
	if rt.Params != nil {
		oc.AddReqStructure(rt.Params)
	}
	if rt.Body != nil {
		oc.AddReqStructure(rt.Body, openapi.WithContentType("application/json"),
			openapi.WithCustomize(func(cor openapi.ContentOrReference) {
				if rb, ok := cor.(*openapi3.RequestBodyOrRef); ok && rb.RequestBody != nil {
					rb.RequestBody.WithRequired(true)
				}
			}))
	}
	for _, resp := range rt.Responses {
		ct := resp.ContentType
		if ct == "" && resp.Body != nil {
			ct = hal.ContentType
		}
		opts := []openapi.ContentOption{openapi.WithHTTPStatus(resp.Status)}
		if ct != "" {
			opts = append(opts, openapi.WithContentType(ct))
		}
		desc := resp.Description
		if desc == "" {
			desc = http.StatusText(resp.Status)
		}
		headers := resp.Headers
		opts = append(opts, openapi.WithCustomize(func(cor openapi.ContentOrReference) {
			ror, ok := cor.(*openapi3.ResponseOrRef)
			if !ok || ror.Response == nil {
				return
			}
			ror.Response.Description = desc
			for _, h := range headers {
				if ror.Response.Headers == nil {
					ror.Response.Headers = map[string]openapi3.HeaderOrRef{}
				}
				ror.Response.Headers[h] = headerDoc(h)
			}
		}))
		oc.AddRespStructure(resp.Body, opts...)
	}
	for _, status := range errorStatuses(rt, database) {
		name := problemResponseName(status)
		oc.AddRespStructure(problem.Problem{}, openapi.WithHTTPStatus(status),
			openapi.WithContentType(problem.ContentType),
			openapi.WithCustomize(func(cor openapi.ContentOrReference) {
				if ror, ok := cor.(*openapi3.ResponseOrRef); ok {
					ror.Response = nil
					ror.ResponseReference = &openapi3.ResponseReference{Ref: "#/components/responses/" + name}
				}
			}))
	}
	return r.AddOperation(oc)
}

// errorStatuses returns the problem statuses of rt: its own, those of body
// decoding when it takes a body, 500, and when its service has a database
// (a domain service, routed by httpkit.Router) 503, 406 (an Accept without
// JSON) and 400 (a query string with invalid UTF-8 or NUL), sorted and
// without duplicates.
func errorStatuses(rt Route, database bool) []int {
	set := map[int]bool{http.StatusInternalServerError: true, http.StatusServiceUnavailable: database,
		http.StatusNotAcceptable: database}
	if database {
		set[http.StatusBadRequest] = true
	}
	for _, s := range rt.Errors {
		set[s] = true
	}
	for _, s := range authStatuses(rt.Auth) {
		set[s] = true
	}
	if rt.Body != nil {
		for _, s := range []int{400, 413, 415, 422} {
			set[s] = true
		}
	}
	out := make([]int, 0, len(set))
	for s, ok := range set {
		if ok {
			out = append(out, s)
		}
	}
	sort.Ints(out)
	return out
}

// problemResponseName names the shared response of a problem status:
// 404 -> NotFound.
func problemResponseName(status int) string {
	return strings.NewReplacer(" ", "", "-", "").Replace(http.StatusText(status))
}

// addProblemResponses adds to spec's components the shared problem
// responses the routes refer to, each with an example. database: the
// service has a database, which its 503 is about.
func addProblemResponses(spec *openapi3.Spec, routes []Route, database bool) {
	comps := spec.ComponentsEns()
	if comps.Responses == nil {
		comps.Responses = &openapi3.ComponentsResponses{}
	}
	if comps.Responses.MapOfResponseOrRefValues == nil {
		comps.Responses.MapOfResponseOrRefValues = map[string]openapi3.ResponseOrRef{}
	}
	for _, rt := range routes {
		for _, status := range errorStatuses(rt, database) {
			desc := problemDescriptions[status]
			if status == http.StatusServiceUnavailable && database {
				desc = databaseUnavailable
			}
			var example any = problemExample(status, desc)
			if desc == "" {
				desc = http.StatusText(status)
			}
			comps.Responses.MapOfResponseOrRefValues[problemResponseName(status)] = openapi3.ResponseOrRef{Response: &openapi3.Response{
				Description: desc,
				Content: map[string]openapi3.MediaType{problem.ContentType: {
					Schema:  &openapi3.SchemaOrRef{SchemaReference: &openapi3.SchemaReference{Ref: schemasPrefix + "Problem"}},
					Example: &example,
				}},
			}}
		}
	}
}

func headerDoc(name string) openapi3.HeaderOrRef {
	schema := openapi3.Schema{}
	schema.WithType(openapi3.SchemaTypeString)
	h := openapi3.Header{Schema: &openapi3.SchemaOrRef{Schema: &schema}}
	if d, ok := knownHeaders[name]; ok {
		h.WithDescription(d)
	}
	return openapi3.HeaderOrRef{Header: &h}
}

// addExamples sets an example on every request and response body of spec:
// the route's own example when it has one, a problem for problem answers,
// otherwise one generated from the schema.
func addExamples(spec *openapi3.Spec, routes []Route, baseURL string) error {
	defs, err := genericDefs(spec)
	if err != nil {
		return err
	}
	ex := exampler{defs: defs, baseURL: baseURL}
	overrides := map[string]any{}
	for _, rt := range routes {
		for _, resp := range rt.Responses {
			if resp.Example != nil {
				overrides[strings.ToLower(rt.Method)+" "+rt.Path+" "+strconv.Itoa(resp.Status)] = resp.Example
			}
		}
	}
	for path, item := range spec.Paths.MapOfPathItemValues {
		for method, op := range item.MapOfOperationValues {
			if rb := op.RequestBody; rb != nil && rb.RequestBody != nil {
				for ct, mt := range rb.RequestBody.Content {
					if err := setExample(&mt, ex, nil); err != nil {
						return err
					}
					rb.RequestBody.Content[ct] = mt
				}
			}
			for status, ror := range op.Responses.MapOfResponseOrRefValues {
				if ror.Response == nil {
					continue
				}
				for ct, mt := range ror.Response.Content {
					var override any
					if v, ok := overrides[method+" "+path+" "+status]; ok {
						override = v
					}
					ex.embedded = lastSegment(path)
					if err := setExample(&mt, ex, override); err != nil {
						return err
					}
					ror.Response.Content[ct] = mt
				}
			}
			item.MapOfOperationValues[method] = op
		}
		spec.Paths.MapOfPathItemValues[path] = item
	}
	return nil
}

func setExample(mt *openapi3.MediaType, ex exampler, override any) error {
	v := override
	if v == nil {
		if mt.Schema == nil {
			return nil
		}
		b, err := json.Marshal(mt.Schema)
		if err != nil {
			return err
		}
		var s any
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v = ex.example(s, "", 0)
	}
	if v != nil {
		mt.Example = &v
	}
	return nil
}

// genericDefs returns the component schemas of spec as generic JSON.
func genericDefs(spec *openapi3.Spec) (map[string]any, error) {
	defs := map[string]any{}
	if spec.Components == nil || spec.Components.Schemas == nil {
		return defs, nil
	}
	b, err := json.Marshal(spec.Components.Schemas.MapOfSchemaOrRefValues)
	if err != nil {
		return nil, err
	}
	return defs, json.Unmarshal(b, &defs)
}

// lastSegment returns the last path segment that is not a parameter:
// /v1/orders/{id} -> orders.
func lastSegment(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i := len(segs) - 1; i >= 0; i-- {
		if !strings.HasPrefix(segs[i], "{") {
			return segs[i]
		}
	}
	return ""
}

// problemExample is the example problem for status, with detail (none
// when empty).
func problemExample(status int, detail string) map[string]any {
	p := map[string]any{
		"type":     problem.TypeBlank,
		"title":    http.StatusText(status),
		"status":   status,
		"detail":   detail,
		"instance": "/v1/orders/7d2c4e5f-0b1a-4c3d-9e8f-1a2b3c4d5e6f",
	}
	switch status {
	case http.StatusUnprocessableEntity:
		p["type"] = problem.TypeValidation
		p["title"] = "Validation failed"
		p["errors"] = []any{map[string]any{"field": "/name", "message": "must not be empty"}}
	case http.StatusConflict:
		p["type"] = problem.TypeConflict
	case http.StatusPreconditionFailed:
		p["type"] = problem.TypeStale
	}
	if p["detail"] == "" {
		delete(p, "detail")
	}
	return p
}
