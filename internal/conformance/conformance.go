// Package conformance audits a running Sagittarius platform against the
// architecture guideline, the way an outside reviewer would: it watches the
// live traffic on the fanout exchange sagittarius-a through a queue of its
// own and checks every message (Watch, Rules.Message), checks the broker
// topology through the RabbitMQ management API (Topology), and checks every
// API path of the manifests and of the running platform, reached by
// following HAL links from the gateway root (ManifestPaths, Crawl).
//
// Every check returns Violations; a conforming platform has none. The
// command cmd/conformance (scripts/conformance) runs them all; the
// end-to-end tests run them during the saga.
package conformance

import (
	"fmt"
	"sort"
)

// Violation is one broken rule.
type Violation struct {
	Rule    string // short id, e.g. delivery_mode
	Subject string // what breaks it: a message, a queue, a path
	Detail  string // what is wrong
}

func (v Violation) String() string { return fmt.Sprintf("[%s] %s: %s", v.Rule, v.Subject, v.Detail) }

// Sort orders violations by rule, then subject.
func Sort(vs []Violation) {
	sort.SliceStable(vs, func(i, j int) bool {
		if vs[i].Rule != vs[j].Rule {
			return vs[i].Rule < vs[j].Rule
		}
		return vs[i].Subject < vs[j].Subject
	})
}
