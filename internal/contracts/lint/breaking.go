package lint

import (
	"fmt"
	"sort"
	"strings"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/contracts/catalog"
)

// BreakingOpenAPI lists the changes from the old to the new version of an
// OpenAPI manifest that break existing clients: a removed operation or
// successful answer, a new required parameter or request field, a removed
// parameter or request field, a removed or retyped response field, a
// response field that is no longer always present, a changed media type.
func BreakingOpenAPI(file string, oldDoc, newDoc []byte) ([]Finding, error) {
	o, err := catalog.Decode(oldDoc)
	if err != nil {
		return nil, fmt.Errorf("old %s: %w", file, err)
	}
	n, err := catalog.Decode(newDoc)
	if err != nil {
		return nil, fmt.Errorf("new %s: %w", file, err)
	}
	oDefs, _ := catalog.Path(o, "components", "schemas").(map[string]any)
	nDefs, _ := catalog.Path(n, "components", "schemas").(map[string]any)
	var out []Finding
	add := func(where, format string, args ...any) {
		out = append(out, Finding{File: file, Where: where, Rule: "breaking-change", Message: fmt.Sprintf(format, args...)})
	}
	oPaths, _ := o["paths"].(map[string]any)
	nPaths, _ := n["paths"].(map[string]any)
	for _, p := range keys(oPaths) {
		oItem, _ := oPaths[p].(map[string]any)
		nItem, _ := nPaths[p].(map[string]any)
		for _, m := range keys(oItem) {
			if !httpMethods[m] {
				continue
			}
			where := "paths." + p + "." + m
			nOp, ok := nItem[m].(map[string]any)
			if !ok {
				add(where, "operation %s %s removed", strings.ToUpper(m), p)
				continue
			}
			oOp, _ := oItem[m].(map[string]any)
			// Parameters.
			oParams, nParams := params(oOp), params(nOp)
			for k, np := range nParams {
				if np["required"] == true && oParams[k] == nil {
					add(where+".parameters."+k, "new required parameter %s", k)
				}
			}
			for k, op := range oParams {
				np := nParams[k]
				if np == nil {
					add(where+".parameters."+k, "parameter %s removed", k)
					continue
				}
				if np["required"] == true && op["required"] != true {
					add(where+".parameters."+k, "parameter %s is now required", k)
				}
				for _, d := range diffSchemas(op["schema"], np["schema"], oDefs, nDefs, input) {
					add(where+".parameters."+k, "parameter %s: %s", k, d)
				}
			}
			// Request body.
			oBody := catalog.Path(oOp, "requestBody", "content", "application/json", "schema")
			nBody := catalog.Path(nOp, "requestBody", "content", "application/json", "schema")
			switch {
			case oBody == nil && nBody != nil && catalog.Path(nOp, "requestBody", "required") == true:
				add(where+".requestBody", "a request body is now required")
			case oBody != nil && nBody == nil:
				add(where+".requestBody", "the request body is no longer accepted")
			case oBody != nil:
				for _, d := range diffSchemas(oBody, nBody, oDefs, nDefs, input) {
					add(where+".requestBody", "request body %s", d)
				}
			}
			// Successful responses.
			oResp, _ := oOp["responses"].(map[string]any)
			nResp, _ := nOp["responses"].(map[string]any)
			for _, status := range keys(oResp) {
				if !strings.HasPrefix(status, "2") {
					continue
				}
				w := where + ".responses." + status
				nr := response(n, nResp[status])
				if nr == nil {
					add(w, "successful answer %s removed", status)
					continue
				}
				or := response(o, oResp[status])
				oContent, _ := or["content"].(map[string]any)
				nContent, _ := nr["content"].(map[string]any)
				for _, ct := range keys(oContent) {
					nc, ok := nContent[ct]
					if !ok {
						add(w, "answer %s is no longer %s", status, ct)
						continue
					}
					for _, d := range diffSchemas(catalog.Path(oContent[ct], "schema"), catalog.Path(nc, "schema"), oDefs, nDefs, output) {
						add(w, "response body %s", d)
					}
				}
			}
		}
	}
	Sort(out)
	return out, nil
}

var httpMethods = map[string]bool{"get": true, "put": true, "post": true, "delete": true, "patch": true, "head": true, "options": true, "trace": true}

// params indexes an operation's parameters by in:name.
func params(op map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	ps, _ := op["parameters"].([]any)
	for _, p := range ps {
		m, _ := p.(map[string]any)
		if m == nil {
			continue
		}
		out[str(m["in"])+":"+str(m["name"])] = m
	}
	return out
}

// response resolves a response object or its $ref into components.responses.
func response(doc map[string]any, r any) map[string]any {
	m, _ := r.(map[string]any)
	if ref, ok := m["$ref"].(string); ok {
		m, _ = catalog.Path(doc, "components", "responses", ref[strings.LastIndex(ref, "/")+1:]).(map[string]any)
	}
	return m
}

// BreakingAsyncAPI lists the changes from the old to the new version of an
// AsyncAPI manifest that break consumers: an event no longer published
// (removed or renamed), a changed entity key, a payload field removed,
// retyped or no longer always present.
func BreakingAsyncAPI(file string, o, n catalog.Doc) []Finding {
	var out []Finding
	add := func(where, format string, args ...any) {
		out = append(out, Finding{File: file, Where: where, Rule: "breaking-change", Message: fmt.Sprintf(format, args...)})
	}
	nPub := map[string]bool{}
	for _, t := range n.Published(eventbus.Exchange) {
		nPub[t] = true
	}
	for _, t := range o.Published(eventbus.Exchange) {
		where := "components.messages." + t
		if !nPub[t] {
			add(where, "event %s is no longer published (removed or renamed)", t)
			continue
		}
		om, nm := o.Message(t), n.Message(t)
		if ok, nk := str(om["x-entity-key"]), str(nm["x-entity-key"]); ok != nk {
			add(where, "entity key changed from %q to %q", ok, nk)
		}
		for _, d := range diffSchemas(om["payload"], nm["payload"], o.Schemas(), n.Schemas(), output) {
			add(where+".payload", "payload %s", d)
		}
	}
	Sort(out)
	return out
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
