package contracts

import (
	"path"
	"reflect"
	"slices"
	"strings"

	"github.com/swaggest/jsonschema-go"
	"github.com/swaggest/openapi-go"

	"github.com/sagittarius-a/sagittarius/internal/hal"
	"github.com/sagittarius-a/sagittarius/internal/problem"
)

// schemasPrefix is where both manifests keep named schemas.
const schemasPrefix = "#/components/schemas/"

// halRel stands for hal.Rel, whose fields are unexported and whose JSON is
// either one link object or an array of them.
type halRel struct{}

// JSONSchemaOneOf implements jsonschema.OneOfExposer.
func (halRel) JSONSchemaOneOf() []any { return []any{hal.Link{}, []hal.Link{}} }

// PrepareJSONSchema implements jsonschema.Preparer: the value is not an
// object but one of the two alternatives.
func (halRel) PrepareJSONSchema(s *jsonschema.Schema) error {
	s.Type = nil
	s.WithDescription("a HAL link object, or an array of link objects for a list relation")
	return nil
}

// configure prepares r for the platform's Go types, for both manifests:
//
//   - a hal.Rel is a link object or an array of link objects;
//   - a hal.Links field tagged links:"self,customer,payment?" documents the
//     link relations of its resource (documentLinks);
//   - a field encoded without omitempty/omitzero is required in what the
//     services send (responses, event payloads): it is always present,
//     possibly null; request bodies require only fields tagged required:"true";
//   - definition names are the Go package and type name in CamelCase
//     (OrdereventsOrder), generic arguments in brackets removed.
func configure(r *jsonschema.Reflector) {
	r.AddTypeMapping(hal.Rel{}, halRel{})
	r.DefaultOptions = append(r.DefaultOptions,
		jsonschema.InterceptDefName(defName),
		jsonschema.InterceptProp(func(p jsonschema.InterceptPropParams) error {
			if !p.Processed || p.ParentSchema == nil {
				return nil
			}
			if rels, ok := p.Field.Tag.Lookup("links"); ok {
				documentLinks(p.PropertySchema, rels)
			}
			if isRequest(p.Context) {
				return nil
			}
			tag, ok := p.Field.Tag.Lookup("json")
			if !ok || tag == "-" {
				return nil
			}
			_, opts, _ := strings.Cut(tag, ",")
			for _, o := range strings.Split(opts, ",") {
				if o == "omitempty" || o == "omitzero" {
					return nil
				}
			}
			if !slices.Contains(p.ParentSchema.Required, p.Name) {
				p.ParentSchema.Required = append(p.ParentSchema.Required, p.Name)
			}
			return nil
		}),
	)
}

// defName names the definition of t: the default (package and type name in
// CamelCase) with a readable form for generic types,
// hal.Collection[orderevents.Order] giving HalCollectionOfOrdereventsOrder.
func defName(t reflect.Type, name string) string {
	switch {
	case t == reflect.TypeFor[halRel]():
		return "HalLinkOrLinks"
	case t == reflect.TypeFor[problem.Problem]():
		return "Problem"
	}
	base, args, ok := strings.Cut(t.Name(), "[")
	if !ok {
		return name
	}
	out := camel(path.Base(t.PkgPath())) + camel(base) + "Of"
	for _, a := range strings.Split(strings.TrimSuffix(args, "]"), ",") {
		a = strings.TrimLeft(a, "*[]")
		pkg, typ := "", a
		if i := strings.LastIndex(a, "."); i >= 0 {
			pkg, typ = path.Base(a[:i]), a[i+1:]
		}
		out += camel(pkg) + camel(typ)
	}
	return out
}

// camel upper-cases the first letter of s and drops dashes and underscores,
// upper-casing the letter after each.
func camel(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		if r == '-' || r == '_' {
			up = true
			continue
		}
		if up {
			b.WriteString(strings.ToUpper(string(r)))
			up = false
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// isRequest reports whether rc reflects an OpenAPI request (body or
// parameters) rather than a response or an event.
func isRequest(rc *jsonschema.ReflectContext) bool {
	oc, ok := openapi.OperationCtx(rc)
	return ok && !oc.IsProcessingResponse()
}

// documentLinks replaces the schema of a hal.Links field (a $ref to
// HalLinks: any relation) with one that lists the link relations its resource carries, from the
// field's links tag: relations separated by commas, "?" after one that is
// present only in some states ("payment?": once the order is paid). The
// listed relations are the only ones allowed (additionalProperties false),
// those without "?" are required, and the description names them all, so
// that a HAL client learns them from the manifest and a validator catches an
// undocumented one.
func documentLinks(s *jsonschema.Schema, tag string) {
	var (
		doc      jsonschema.Schema
		names    []string
		required []string
	)
	doc.WithType(jsonschema.Object.Type())
	for _, rel := range strings.Split(tag, ",") {
		rel = strings.TrimSpace(rel)
		name, optional := strings.CutSuffix(rel, "?")
		if name == "" {
			continue
		}
		var link jsonschema.Schema
		link.WithRef(schemasPrefix + "HalLinkOrLinks")
		doc.WithPropertiesItem(name, link.ToSchemaOrBool())
		if optional {
			names = append(names, name+" (in some states)")
		} else {
			names = append(names, name)
			required = append(required, name)
		}
	}
	if len(required) > 0 {
		doc.WithRequired(required...)
	}
	doc.WithAdditionalProperties(jsonschema.SchemaOrBool{TypeBoolean: new(false)})
	doc.WithDescription("HAL links; relations: " + strings.Join(names, ", ") + ".")
	*s = doc
}
