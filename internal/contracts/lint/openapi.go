package lint

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// Media types the services answer with.
const (
	halJSON     = "application/hal+json"
	plainJSON   = "application/json"
	problemJSON = "application/problem+json"
)

// OpenAPI validates an OpenAPI 3.0 manifest with kin-openapi (structure,
// references, examples against their schemas) and checks the platform's
// rules: resource naming of every path, an operationId on every operation,
// every error answer (4xx, 5xx) as application/problem+json, every
// successful body as HAL or JSON.
func OpenAPI(file string, manifest []byte) []Finding {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(manifest)
	if err != nil {
		return []Finding{{File: file, Rule: "openapi-load", Message: err.Error()}}
	}
	var out []Finding
	add := func(where, rule, format string, args ...any) {
		out = append(out, Finding{File: file, Where: where, Rule: rule, Message: fmt.Sprintf(format, args...)})
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		add("", "openapi-valid", "kin-openapi: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0.") {
		add("openapi", "openapi-version", "version %q: the guideline asks for OpenAPI 3.0", doc.OpenAPI)
	}
	paths := doc.Paths.Map()
	names := make([]string, 0, len(paths))
	for p := range paths {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		for _, msg := range ResourcePath(p, false) {
			add("paths."+p, "resource-naming", "%s", msg)
		}
		ops := paths[p].Operations()
		methods := make([]string, 0, len(ops))
		for m := range ops {
			methods = append(methods, m)
		}
		sort.Strings(methods)
		for _, m := range methods {
			op := ops[m]
			where := "paths." + p + "." + strings.ToLower(m)
			if op.OperationID == "" {
				add(where, "operation-id", "operation has no operationId")
			}
			if op.Responses == nil || op.Responses.Len() == 0 {
				add(where, "responses", "operation documents no response")
				continue
			}
			success := false
			for status, ref := range op.Responses.Map() {
				code, err := strconv.Atoi(status)
				if err != nil || ref == nil || ref.Value == nil {
					continue
				}
				content := ref.Value.Content
				switch {
				case code >= 200 && code < 300:
					success = true
					for ct := range content {
						if ct != halJSON && ct != plainJSON {
							add(where+".responses."+status, "success-media-type", "answers %s; resources are %s (or %s for documents)", ct, halJSON, plainJSON)
						}
					}
				case code >= 400:
					if len(content) != 1 || content.Get(problemJSON) == nil {
						add(where+".responses."+status, "problem-json", "error answers must be %s (RFC 9457)", problemJSON)
					}
				}
			}
			if !success {
				add(where, "responses", "operation documents no successful (2xx) response")
			}
		}
	}
	return out
}
