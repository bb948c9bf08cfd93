package contracts_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/contracts/catalog"
	"github.com/sagittarius-a/sagittarius/internal/contracts/fixture"
	"github.com/sagittarius-a/sagittarius/internal/hal"
)

func generate(t *testing.T, s contracts.Service) contracts.Manifests {
	t.Helper()
	m, err := contracts.Generate(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func decode(t *testing.T, doc []byte) map[string]any {
	t.Helper()
	m, err := catalog.Decode(doc)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestGenerateIsDeterministic(t *testing.T) {
	api := fixture.NewAPI(hal.MustBase("http://gw"))
	a, b := generate(t, api.Service()), generate(t, api.Service())
	if !bytes.Equal(a.OpenAPI, b.OpenAPI) || !bytes.Equal(a.AsyncAPI, b.AsyncAPI) {
		t.Fatal("two generations of the same service differ")
	}
	for _, doc := range [][]byte{a.OpenAPI, a.AsyncAPI} {
		y, err := contracts.ToYAML(doc)
		if err != nil {
			t.Fatal(err)
		}
		back, err := contracts.FromYAML(y)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(bytes.TrimSpace(back), bytes.TrimSpace(doc)) {
			t.Fatalf("JSON -> YAML -> JSON changed the document:\n%s", firstDiff(doc, back))
		}
	}
}

func firstDiff(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return "line " + al[i] + "\n  vs " + bl[i]
		}
	}
	return "lengths differ"
}

func TestYAMLKeepsScalarTypes(t *testing.T) {
	in := `{"s1":"true","s2":"1.0","s3":"","s4":"null","s5":"007","n":3,"f":1.5,"b":false,"z":null,"k":{"b":1,"a":2},"l":["x",1]}`
	y, err := contracts.ToYAML([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := contracts.FromYAML(y)
	if err != nil {
		t.Fatal(err)
	}
	var want, got bytes.Buffer
	_ = json.Compact(&want, []byte(in))
	_ = json.Compact(&got, out)
	if want.String() != got.String() {
		t.Fatalf("round trip through\n%s\ngave %s, want %s", y, got.String(), want.String())
	}
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	api := fixture.NewAPI(hal.MustBase("http://gw"))
	doc := decode(t, generate(t, api.Service()).OpenAPI)
	ops := map[string]map[string]any{}
	for p, item := range doc["paths"].(map[string]any) {
		for m, op := range item.(map[string]any) {
			ops[strings.ToUpper(m)+" "+p] = op.(map[string]any)
		}
	}
	for _, r := range api.Table() {
		if _, ok := ops[r.Pattern()]; !ok {
			t.Errorf("route %s is not documented", r.Pattern())
		}
	}
	for _, p := range []string{"GET /v1/contracts", "GET /v1/contracts/{name}"} {
		if _, ok := ops[p]; !ok {
			t.Errorf("contract route %s is not documented", p)
		}
	}
	if len(ops) != len(api.Table())+2 {
		t.Errorf("%d operations documented, want %d", len(ops), len(api.Table())+2)
	}

	add := ops["POST /v1/widgets"]
	for _, status := range []string{"201", "400", "413", "415", "422", "500"} {
		if catalog.Path(add, "responses", status) == nil {
			t.Errorf("POST /v1/widgets: status %s not documented", status)
		}
	}
	if ref := catalog.Path(add, "responses", "422", "$ref"); ref != "#/components/responses/UnprocessableEntity" {
		t.Errorf("422 refers to %v", ref)
	}
	if ct := catalog.Path(doc, "components", "responses", "NotFound", "content", "application/problem+json", "schema", "$ref"); ct != "#/components/schemas/Problem" {
		t.Errorf("NotFound response schema: %v", ct)
	}
	if catalog.Path(add, "responses", "201", "headers", "Location") == nil || catalog.Path(add, "responses", "201", "headers", "ETag") == nil {
		t.Error("POST 201 does not document Location and ETag")
	}
	if catalog.Path(add, "requestBody", "content", "application/json", "example") == nil {
		t.Error("request body has no example")
	}
	if catalog.Path(add, "responses", "201", "content", "application/hal+json", "example", "_links", "self", "href") == nil {
		t.Error("response has no example with _links.self")
	}
	if s := catalog.Path(ops["GET /v1/widgets"], "responses", "200", "content", "application/hal+json", "example", "_embedded", "widgets"); s == nil {
		t.Error("collection example does not embed items under the collection's relation")
	}
	if got := paramNames(ops["DELETE /v1/widgets/{id}"]); !slices.Equal(got, []string{"header:If-Match", "path:id"}) {
		t.Errorf("DELETE parameters: %v", got)
	}
	if got := paramNames(ops["GET /v1/widgets"]); !slices.Equal(got, []string{"query:page", "query:size", "query:status"}) {
		t.Errorf("list parameters: %v", got)
	}

	// Responses require what is always sent; requests only what is tagged.
	widget := catalog.Path(doc, "components", "schemas", "FixtureWidget").(map[string]any)
	if got := strs(widget["required"]); !slices.Equal(got, []string{"_links", "created_at", "id", "name", "price", "status", "version"}) {
		t.Errorf("Widget required %v", got)
	}
	req := catalog.Path(doc, "components", "schemas", "FixtureAddRequest").(map[string]any)
	if got := strs(req["required"]); !slices.Equal(got, []string{"name", "price"}) {
		t.Errorf("addRequest required %v", got)
	}
	rel := catalog.Path(doc, "components", "schemas", "HalLinkOrLinks").(map[string]any)
	if rel["oneOf"] == nil || rel["type"] != nil {
		t.Errorf("HalLinkOrLinks = %v, want a oneOf without type", rel)
	}
	if catalog.Path(doc, "components", "schemas", "HalCollectionOfFixtureWidget") == nil {
		t.Error("no schema HalCollectionOfFixtureWidget")
	}
	if s := catalog.Path(doc, "servers"); s == nil || catalog.Path(s.([]any)[0], "url") != "/widgets" {
		t.Errorf("servers %v, want the gateway prefix /widgets", s)
	}
}

func paramNames(op map[string]any) []string {
	var out []string
	for _, p := range op["parameters"].([]any) {
		m := p.(map[string]any)
		out = append(out, m["in"].(string)+":"+m["name"].(string))
	}
	slices.Sort(out)
	return out
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	slices.Sort(out)
	return out
}

func TestAsyncAPIDescribesChannelsAndMessages(t *testing.T) {
	api := fixture.NewAPI(hal.MustBase("http://gw"))
	d, err := catalog.Parse("widgets", generate(t, api.Service()).AsyncAPI)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Published("sagittarius-a"); !slices.Equal(got, []string{"test.widgets.widget_added", "test.widgets.widget_removed"}) {
		t.Errorf("published %v", got)
	}
	if got := d.Consumed(); !slices.Equal(got, []string{"test.gadgets.gadget_built"}) {
		t.Errorf("consumed %v", got)
	}
	m := d.Message("test.widgets.widget_added")
	for path, want := range map[string]any{
		"name":                                "test.widgets.widget_added",
		"bindings.amqp.messageType":           "test.widgets.widget_added",
		"payload.properties.fired_at.pattern": contracts.FiredAtPattern,
		"payload.properties.widget.$ref":      "#/components/schemas/FixtureWidget",
		"correlationId.location":              "$message.header#/correlation_id",
		"x-amqp-properties.delivery_mode":     float64(2),
		"examples.0.payload.fired_at":         nil, // checked below
	} {
		keys := strings.Split(path, ".")
		var got any = m
		for _, k := range keys {
			if l, ok := got.([]any); ok && k == "0" {
				got = l[0]
				continue
			}
			got = catalog.Path(got, k)
		}
		if want != nil && got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	if got := strs(catalog.Path(m, "payload", "required")); !slices.Equal(got, []string{"fired_at", "uuid", "widget"}) {
		t.Errorf("payload required %v", got)
	}
	if q := catalog.Path(d.Root, "channels", "test.widgets", "bindings", "amqp", "queue", "name"); q != "test.widgets" {
		t.Errorf("queue binding name %v", q)
	}
	if ty := catalog.Path(d.Root, "channels", "sagittarius-a", "bindings", "amqp", "exchange", "type"); ty != "fanout" {
		t.Errorf("exchange type %v", ty)
	}
}

func TestValidateRefusesIncompleteServices(t *testing.T) {
	ok := fixture.NewAPI(hal.MustBase("http://gw")).Service()
	cases := map[string]func(s *contracts.Service){
		"bad dir":          func(s *contracts.Service) { s.Dir = "Widgets" },
		"bad name":         func(s *contracts.Service) { s.Name = "widgets" },
		"no title":         func(s *contracts.Service) { s.Title = "" },
		"no id":            func(s *contracts.Service) { s.Routes[1].ID = "" },
		"duplicate id":     func(s *contracts.Service) { s.Routes[2].ID = s.Routes[1].ID },
		"no response":      func(s *contracts.Service) { s.Routes[1].Responses = nil },
		"undeclared param": func(s *contracts.Service) { s.Routes[3].Params = nil },
		"duplicate route":  func(s *contracts.Service) { s.Routes = append(s.Routes, s.Routes[1]) },
	}
	for name, breakIt := range cases {
		t.Run(name, func(t *testing.T) {
			s := ok
			s.Routes = append([]contracts.Route(nil), ok.Routes...)
			breakIt(&s)
			if _, err := contracts.Generate(s); err == nil {
				t.Fatal("Generate accepted the service")
			}
		})
	}
}

func TestMountServesTheManifests(t *testing.T) {
	api := fixture.NewAPI(hal.MustBase("http://gw"))
	rt := api.Routes()
	m, err := contracts.Mount(rt, api.Service(), hal.MustBase("http://gw").Join("widgets", "v1"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt)
	defer srv.Close()
	get := func(path string) (*http.Response, []byte) {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}
	res, body := get("/v1/contracts")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != hal.ContentType {
		t.Fatalf("index: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var idx contracts.Index
	if err := json.Unmarshal(body, &idx); err != nil {
		t.Fatal(err)
	}
	if idx.Links.Href("openapi") != "http://gw/widgets/v1/contracts/openapi" || idx.Links.Href("asyncapi") == "" {
		t.Errorf("index links %s", body)
	}
	for name, want := range map[string][]byte{"openapi": m.OpenAPI, "asyncapi": m.AsyncAPI} {
		res, body := get("/v1/contracts/" + name)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" || !bytes.Equal(body, want) {
			t.Errorf("%s: %d %s, body equal %v", name, res.StatusCode, res.Header.Get("Content-Type"), bytes.Equal(body, want))
		}
	}
	if res, _ := get("/v1/contracts/swagger"); res.StatusCode != 404 || res.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("unknown contract: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if res, _ := get("/v1/"); res.StatusCode != 200 {
		t.Errorf("GET /v1/ (Slash route): %d", res.StatusCode)
	}
}

func TestHandleRoutesRefusesRoutesWithoutHandler(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	contracts.HandleRoutes(http.NewServeMux(), []contracts.Route{{Method: "GET", Path: "/v1/x"}})
}

// TestDatabaseServiceDocuments503 checks the rule: every operation of a
// service with a bus (hence a database) documents the 503 problem, and a
// service without one documents 503 only where a route lists it.
func TestDatabaseServiceDocuments503(t *testing.T) {
	api := fixture.NewAPI(hal.MustBase("http://gw"))
	for _, database := range []bool{true, false} {
		s := api.Service()
		if !database {
			s.Events = nil
		}
		doc := decode(t, generate(t, s).OpenAPI)
		n := 0
		for p, item := range doc["paths"].(map[string]any) {
			for m, op := range item.(map[string]any) {
				n++
				ref := catalog.Path(op, "responses", "503", "$ref")
				if database && ref != "#/components/responses/ServiceUnavailable" {
					t.Errorf("with a database: %s %s: 503 refers to %v", strings.ToUpper(m), p, ref)
				}
				if !database && ref != nil {
					t.Errorf("without a database: %s %s documents 503", strings.ToUpper(m), p)
				}
			}
		}
		if n == 0 {
			t.Fatal("no operations")
		}
		resp := catalog.Path(doc, "components", "responses", "ServiceUnavailable")
		if !database {
			if resp != nil {
				t.Error("without a database: components.responses.ServiceUnavailable exists")
			}
			continue
		}
		if ref := catalog.Path(resp, "content", "application/problem+json", "schema", "$ref"); ref != "#/components/schemas/Problem" {
			t.Errorf("ServiceUnavailable schema: %v", ref)
		}
		if d, _ := catalog.Path(resp, "description").(string); !strings.Contains(d, "database") {
			t.Errorf("ServiceUnavailable description %q does not name the database", d)
		}
		if st := catalog.Path(resp, "content", "application/problem+json", "example", "status"); st != float64(503) {
			t.Errorf("ServiceUnavailable example status %v (%T)", st, st)
		}
	}
}

// TestEveryOperationDeclaresItsSecurity: a route without a requirement is
// refused; the OpenAPI manifest declares the OpenID Connect scheme, and each
// operation its security (optional for an anonymous one) and its roles.
func TestEveryOperationDeclaresItsSecurity(t *testing.T) {
	svc := fixture.NewAPI(hal.MustBase("http://gw")).Service()
	bad := svc
	bad.Routes = slices.Clone(svc.Routes)
	bad.Routes[1].Auth = nil
	if _, err := contracts.Generate(bad); err == nil || !strings.Contains(err.Error(), "declares no access requirement") {
		t.Fatalf("a route without requirement: %v", err)
	}
	m, err := contracts.Generate(svc)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			SecuritySchemes map[string]struct {
				Type             string
				OpenIDConnectURL string `json:"openIdConnectUrl"`
			}
		}
		Paths map[string]map[string]struct {
			Security  []map[string][]string
			Roles     []string `json:"x-roles"`
			Responses map[string]any
		}
	}
	if err := json.Unmarshal(m.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	sch := doc.Components.SecuritySchemes[contracts.SecurityScheme]
	if sch.Type != "openIdConnect" || sch.OpenIDConnectURL != contracts.DefaultOpenIDConnectURL {
		t.Fatalf("security scheme %+v", doc.Components.SecuritySchemes)
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if len(op.Security) == 0 {
				t.Errorf("%s %s declares no security", method, path)
			}
			if op.Responses["401"] == nil {
				t.Errorf("%s %s does not document 401", method, path)
			}
		}
	}
	add := doc.Paths["/v1/widgets"]["post"]
	if len(add.Security) != 1 || !slices.Equal(add.Roles, []string{"staff"}) || add.Responses["403"] == nil {
		t.Errorf("addWidget: %+v", add)
	}
	if get := doc.Paths["/v1/widgets/{id}"]["get"]; len(get.Security) != 2 || len(get.Security[0]) != 0 || get.Roles != nil {
		t.Errorf("getWidget (anonymous): %+v", get)
	}
}
