package platform

import (
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestEveryExampleIsValid validates every request and response example of
// every generated OpenAPI manifest against its own schema, one by one, so
// that a failure names the operation. The schemas carry the services' rules
// a client can see (the statuses a PATCH accepts, the link relations a
// resource carries): the order PATCH example {"status":"active"}, which the
// service refuses with 422, must fail here.
func TestEveryExampleIsValid(t *testing.T) {
	files, err := generated()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	var orderPatch *openapi3.Schema
	for _, p := range files.Paths() {
		if !strings.HasPrefix(p, "contracts/openapi/") {
			continue
		}
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(files[p])
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		paths := doc.Paths.Map()
		keys := make([]string, 0, len(paths))
		for k := range paths {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, path := range keys {
			for method, op := range paths[path].Operations() {
				where := p + ": " + method + " " + path
				check := func(what string, content openapi3.Content) {
					for ct, mt := range content {
						if mt.Example == nil || mt.Schema == nil || mt.Schema.Value == nil {
							continue
						}
						checked++
						if err := mt.Schema.Value.VisitJSON(mt.Example); err != nil {
							t.Errorf("%s %s %s: example invalid against its schema: %v", where, what, ct, err)
						}
					}
				}
				if rb := op.RequestBody; rb != nil && rb.Value != nil {
					check("request", rb.Value.Content)
					if p == "contracts/openapi/orders.yaml" && method == "PATCH" {
						orderPatch = rb.Value.Content.Get("application/json").Schema.Value
					}
				}
				for status, r := range op.Responses.Map() {
					if r.Value != nil {
						check("response "+status, r.Value.Content)
					}
				}
			}
		}
	}
	if checked < 50 {
		t.Errorf("only %d examples checked", checked)
	}
	if orderPatch == nil {
		t.Fatal("no PATCH request body in contracts/openapi/orders.yaml")
	}
	if err := orderPatch.VisitJSON(map[string]any{"status": "active"}); err == nil {
		t.Error(`the order PATCH schema accepts {"status":"active"}, which the service refuses with 422`)
	}
	if err := orderPatch.VisitJSON(map[string]any{"status": "cancelled"}); err != nil {
		t.Errorf(`the order PATCH schema refuses {"status":"cancelled"}: %v`, err)
	}
}
