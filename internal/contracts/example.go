package contracts

import (
	"sort"
	"strings"

	"github.com/google/uuid"
)

// exampleTime is the instant every generated example uses.
const exampleTime = "2026-11-22T10:00:00.000Z"

// exampleNamespace seeds the deterministic uuids of generated examples.
var exampleNamespace = uuid.MustParse("6f1c8e2a-4b0d-4c55-9a57-5a67a1a7e3b1")

// exampler builds an example instance of a JSON Schema given as generic
// JSON (map[string]any), resolving local references against defs (the
// named schemas, by name). The result is deterministic: the same schema
// always gives the same example.
type exampler struct {
	defs     map[string]any // name -> schema
	baseURL  string         // prefix of example hrefs
	embedded string         // the relation of the items of a collection (_embedded)
}

// example returns an example of schema; name is the property (or "" at the
// root) and guides the choice of plausible strings.
func (e exampler) example(schema any, name string, depth int) any {
	s, ok := schema.(map[string]any)
	if !ok || depth > 40 {
		return nil
	}
	if ref, ok := s["$ref"].(string); ok {
		def := e.defs[strings.TrimPrefix(ref, schemasPrefix)]
		return e.example(def, name, depth+1)
	}
	if v, ok := s["example"]; ok {
		return v
	}
	if vs, ok := s["examples"].([]any); ok && len(vs) > 0 {
		return vs[0]
	}
	if v, ok := s["const"]; ok {
		return v
	}
	if vs, ok := s["enum"].([]any); ok && len(vs) > 0 {
		return vs[0]
	}
	if v, ok := s["default"]; ok {
		return v
	}
	for _, k := range []string{"oneOf", "anyOf", "allOf"} {
		if alts, ok := s[k].([]any); ok && len(alts) > 0 {
			if k == "allOf" {
				merged := map[string]any{}
				for _, a := range alts {
					if m, ok := e.example(a, name, depth+1).(map[string]any); ok {
						for k, v := range m {
							merged[k] = v
						}
					}
				}
				return merged
			}
			return e.example(alts[0], name, depth+1)
		}
	}
	switch typeOf(s) {
	case "object":
		out := map[string]any{}
		props, _ := s["properties"].(map[string]any)
		if _, isLink := props["href"]; isLink {
			out["href"] = e.baseURL
			return out
		}
		keys := make([]string, 0, len(props))
		for k := range props {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if v := e.example(props[k], k, depth+1); v != nil {
				out[k] = v // a schema that says nothing (json.RawMessage) gets no example
			}
		}
		if ap, ok := s["additionalProperties"].(map[string]any); ok && len(props) == 0 {
			key := "items"
			switch {
			case name == "_links":
				key = "self"
			case name == "_embedded" && e.embedded != "":
				key = e.embedded
			}
			out[key] = e.example(ap, key, depth+1)
		}
		return out
	case "array":
		item := e.example(s["items"], singular(name), depth+1)
		if item == nil {
			return []any{}
		}
		return []any{item}
	case "integer":
		if m, ok := s["minimum"].(float64); ok {
			return m
		}
		if v, ok := exampleInts[name]; ok {
			return v
		}
		return 1
	case "number":
		return 1.5
	case "boolean":
		return name == "templated"
	case "string":
		return e.str(s, name)
	}
	return nil
}

// str returns a plausible string for a property.
func (e exampler) str(s map[string]any, name string) string {
	format, _ := s["format"].(string)
	switch {
	case format == "date-time" || strings.HasSuffix(name, "_at"):
		return exampleTime
	case format == "date":
		return exampleTime[:10]
	case format == "uuid" || name == "id" || name == "uuid" || strings.HasSuffix(name, "_id") ||
		name == "correlation_id" || name == "causation_id":
		return uuid.NewSHA1(exampleNamespace, []byte(name)).String()
	case format == "email" || name == "email":
		return "ada@example.com"
	case format == "uri" || name == "href":
		return e.baseURL
	case name == "traceparent":
		return "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	}
	if v, ok := exampleStrings[name]; ok {
		return v
	}
	return strings.ReplaceAll(name, "_", " ")
}

var exampleInts = map[string]int{
	"amount":    1250,
	"quantity":  2,
	"available": 10,
	"requested": 3,
	"reserved":  2,
	"version":   3,
	"size":      20,
}

var exampleStrings = map[string]string{
	"currency":           "EUR",
	"country":            "DE",
	"city":               "Berlin",
	"postal_code":        "10117",
	"line1":              "Unter den Linden 1",
	"line2":              "",
	"name":               "Ada Lovelace",
	"sku":                "SKU-0001",
	"token":              "tok_visa",
	"title":              "Example",
	"type":               "about:blank",
	"":                   "example",
	"detail":             "what went wrong, for people",
	"instance":           "/v1",
	"description":        "A short description.",
	"product_name":       "Espresso cup",
	"reason":             "",
	"status":             "active",
	"field":              "/name",
	"message":            "must not be empty",
	"provider_reference": "sim_0001",
	"refund_reference":   "",
}

// typeOf returns the first non-null type of s ("" when none).
func typeOf(s map[string]any) string {
	switch t := s["type"].(type) {
	case string:
		return t
	case []any:
		for _, v := range t {
			if str, _ := v.(string); str != "null" {
				return str
			}
		}
	}
	if _, ok := s["properties"]; ok {
		return "object"
	}
	return ""
}

// singular turns a plural property name into the name of one item.
func singular(name string) string {
	switch {
	case strings.HasSuffix(name, "ies"):
		return strings.TrimSuffix(name, "ies") + "y"
	case strings.HasSuffix(name, "s"):
		return strings.TrimSuffix(name, "s")
	}
	return name
}
