// Package lint checks contract manifests against the architecture
// guideline and against each other: naming rules (services, queues, events,
// resource paths), the AMQP bindings the AsyncAPI 2.6 schema leaves
// unchecked, OpenAPI validity (kin-openapi), consumers against publishers,
// and breaking changes between two versions of a manifest.
//
// Every check returns Findings; an empty result means the manifests pass.
package lint

import (
	"fmt"
	"sort"
)

// Finding is one broken rule.
type Finding struct {
	File    string // the manifest, e.g. contracts/openapi/orders.yaml
	Where   string // location in the document, e.g. paths./v1/orders.get
	Rule    string // short rule id, e.g. resource-plural
	Message string // what is wrong, for people
}

func (f Finding) String() string {
	where := f.Where
	if where == "" {
		where = "(document)"
	}
	return fmt.Sprintf("%s: %s: %s [%s]", f.File, where, f.Message, f.Rule)
}

// Sort orders findings by file, location and rule, for stable reports.
func Sort(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Where != b.Where {
			return a.Where < b.Where
		}
		return a.Rule < b.Rule
	})
}
