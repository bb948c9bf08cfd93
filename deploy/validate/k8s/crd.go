package k8s

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"sigs.k8s.io/yaml"
)

// CRDSchema validates objects of one custom resource against the OpenAPI v3
// schema of its CustomResourceDefinition.
type CRDSchema struct {
	APIVersion, Kind string
	schema           *jsonschema.Schema
}

// LoadCRD reads a CustomResourceDefinition file and compiles the schema of
// its version (e.g. v1beta1). The OpenAPI schema becomes a JSON Schema in
// which an object that lists its properties refuses any other (as the API
// server does with strict field validation), unless it is marked
// x-kubernetes-preserve-unknown-fields or declares additionalProperties;
// nullable fields accept null.
func LoadCRD(path, version string) (*CRDSchema, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var crd struct {
		Spec struct {
			Group string `json:"group"`
			Names struct {
				Kind string `json:"kind"`
			} `json:"names"`
			Versions []struct {
				Name   string `json:"name"`
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &crd); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, v := range crd.Spec.Versions {
		if v.Name != version {
			continue
		}
		if v.Schema.OpenAPIV3Schema == nil {
			return nil, fmt.Errorf("%s: version %s has no openAPIV3Schema", path, version)
		}
		js, err := json.Marshal(strictSchema(v.Schema.OpenAPIV3Schema))
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
		if err != nil {
			return nil, err
		}
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft4) // OpenAPI 3.0 schemas are draft-4 style
		url := "file:///" + crd.Spec.Names.Kind + ".json"
		if err := c.AddResource(url, doc); err != nil {
			return nil, err
		}
		sch, err := c.Compile(url)
		if err != nil {
			return nil, fmt.Errorf("%s: compiling the %s schema: %w", path, version, err)
		}
		return &CRDSchema{APIVersion: crd.Spec.Group + "/" + version, Kind: crd.Spec.Names.Kind, schema: sch}, nil
	}
	return nil, fmt.Errorf("%s: no version %s", path, version)
}

// strictSchema returns a copy of an OpenAPI v3 (structural) schema as a JSON
// Schema that refuses unknown fields.
func strictSchema(s map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range s {
		switch k {
		case "properties":
			props := map[string]any{}
			for name, p := range v.(map[string]any) {
				props[name] = strictSchema(p.(map[string]any))
			}
			out[k] = props
		case "items", "additionalProperties":
			if m, ok := v.(map[string]any); ok {
				out[k] = strictSchema(m)
			} else {
				out[k] = v
			}
		case "anyOf", "allOf", "oneOf":
			var list []any
			for _, p := range v.([]any) {
				list = append(list, strictSchema(p.(map[string]any)))
			}
			out[k] = list
		case "nullable", "x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
			"x-kubernetes-map-type", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields",
			"x-kubernetes-embedded-resource", "description", "format":
			// OpenAPI or Kubernetes extensions: handled below or not checked (CEL rules, list
			// semantics); format is an annotation in JSON Schema and is left out.
		default:
			out[k] = v
		}
	}
	if s["nullable"] == true {
		if t, ok := out["type"].(string); ok {
			out["type"] = []any{t, "null"}
		}
	}
	if s["x-kubernetes-int-or-string"] == true && out["anyOf"] == nil {
		delete(out, "type")
		out["anyOf"] = []any{map[string]any{"type": "integer"}, map[string]any{"type": "string"}}
	}
	_, hasProps := s["properties"]
	_, hasAdditional := s["additionalProperties"]
	if hasProps && !hasAdditional && s["x-kubernetes-preserve-unknown-fields"] != true {
		if s["x-kubernetes-embedded-resource"] == true {
			props := out["properties"].(map[string]any)
			for _, f := range []string{"apiVersion", "kind", "metadata"} {
				if _, ok := props[f]; !ok {
					props[f] = map[string]any{}
				}
			}
		}
		out["additionalProperties"] = false
	}
	return out
}

// Validate checks one object (the document as decoded JSON values) against
// the schema and returns every violation in one error.
func (c *CRDSchema) Validate(raw map[string]any) error {
	js, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return err
	}
	err = c.schema.Validate(inst)
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		return fmt.Errorf("%s", flatten(ve))
	}
	return err
}

var english = message.NewPrinter(language.English)

// flatten lists the leaf causes of a validation error, one per line.
func flatten(ve *jsonschema.ValidationError) string {
	var lines []string
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			lines = append(lines, fmt.Sprintf("at /%s: %s", joinPath(e.InstanceLocation), e.ErrorKind.LocalizedString(english)))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	var buf bytes.Buffer
	for i, l := range lines {
		if i > 0 {
			buf.WriteString("; ")
		}
		buf.WriteString(l)
	}
	return buf.String()
}

func joinPath(p []string) string {
	var buf bytes.Buffer
	for i, s := range p {
		if i > 0 {
			buf.WriteByte('/')
		}
		buf.WriteString(s)
	}
	return buf.String()
}
