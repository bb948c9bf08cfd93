package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// kinds names the resources a client must reach from the gateway root, by
// the shape of their path.
var kinds = map[string]*regexp.Regexp{
	"customer":      regexp.MustCompile(`^/customers/v1/customers/[^/?]+$`),
	"product":       regexp.MustCompile(`^/catalog/v1/products/[^/?]+$`),
	"order":         regexp.MustCompile(`^/orders/v1/orders/[^/?]+$`),
	"stock item":    regexp.MustCompile(`^/inventory/v1/stock-items/[^/?]+$`),
	"reservation":   regexp.MustCompile(`^/inventory/v1/reservations/[^/?]+$`),
	"replenishment": regexp.MustCompile(`^/inventory/v1/replenishments/[^/?]+$`),
	"payment":       regexp.MustCompile(`^/payments/v1/payments/[^/?]+$`),
	"shipment":      regexp.MustCompile(`^/shipping/v1/shipments/[^/?]+$`),
	"journey":       regexp.MustCompile(`^/journeys/v1/journeys/[^/?]+$`),
}

// testFollowLinks crawls the API from the gateway root like a HAL client:
// it follows every untemplated link (in _links and in _embedded items) that
// stays on the gateway, and checks that every kind of resource is reached,
// that every document has _links.self, and that no link is dead.
func testFollowLinks(t *testing.T, c *Cluster) {
	seen := map[string]bool{}
	reached := map[string]int{}
	queue := []string{c.Gateway + "/"}
	seen[c.Gateway+"/"] = true
	const maxRequests = 400
	requests := 0
	for len(queue) > 0 && requests < maxRequests {
		href := queue[0]
		queue = queue[1:]
		requests++
		r := call(t, http.MethodGet, href, nil, nil)
		if r.Status == http.StatusForbidden && r.Header.Get("Content-Type") == "application/problem+json" {
			continue // another role's resource (the operator's failed messages): refused as documented
		}
		if r.Status != http.StatusOK {
			t.Errorf("dead link %s: %d %s", href, r.Status, r.Body)
			continue
		}
		path := strings.TrimPrefix(href, c.Gateway)
		for kind, re := range kinds {
			if re.MatchString(path) {
				reached[kind]++
			}
		}
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(r.Body, &doc); err != nil {
			t.Errorf("%s: not a JSON object: %v", href, err)
			continue
		}
		links := linksOf(doc)
		if _, ok := links["self"]; !ok {
			t.Errorf("%s has no _links.self", href)
		}
		for _, next := range allHrefs(doc) {
			if !strings.HasPrefix(next, c.Gateway+"/") || seen[next] || strings.Contains(next, "/health") {
				continue
			}
			// One page of each collection is enough: skip page links.
			if strings.Contains(next, "page=") && !strings.HasSuffix(next, "page=1") && !strings.Contains(next, "page=1&") {
				continue
			}
			seen[next] = true
			queue = append(queue, next)
		}
	}
	var missing []string
	for kind := range kinds {
		if reached[kind] == 0 {
			missing = append(missing, kind)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("not reachable by following links from %s/ (%d documents read): %v", c.Gateway, requests, missing)
	}
	t.Logf("%d documents read by following links; reached %v", requests, fmt.Sprint(reached))
}

type halLink struct {
	Href      string `json:"href"`
	Templated bool   `json:"templated"`
	Type      string `json:"type"` // a link to something that is not a HAL resource (the portal, a manifest) says so
}

// linksOf decodes the _links of a HAL document: rel -> links (a single link
// object becomes a list of one).
func linksOf(doc map[string]json.RawMessage) map[string][]halLink {
	out := map[string][]halLink{}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(doc["_links"], &raw); err != nil {
		return out
	}
	for rel, v := range raw {
		var one halLink
		if json.Unmarshal(v, &one) == nil && one.Href != "" {
			out[rel] = []halLink{one}
			continue
		}
		var many []halLink
		if json.Unmarshal(v, &many) == nil {
			out[rel] = many
		}
	}
	return out
}

// allHrefs returns the untemplated hrefs of doc's links and of the links of
// the documents embedded in it, recursively.
func allHrefs(doc map[string]json.RawMessage) []string {
	var out []string
	for _, ls := range linksOf(doc) {
		for _, l := range ls {
			if !l.Templated && l.Href != "" && (l.Type == "" || l.Type == "application/hal+json") {
				out = append(out, l.Href)
			}
		}
	}
	var embedded map[string]json.RawMessage
	if json.Unmarshal(doc["_embedded"], &embedded) != nil {
		return out
	}
	for _, v := range embedded {
		var items []map[string]json.RawMessage
		if json.Unmarshal(v, &items) != nil {
			var item map[string]json.RawMessage
			if json.Unmarshal(v, &item) != nil {
				continue
			}
			items = append(items, item)
		}
		for _, item := range items {
			out = append(out, allHrefs(item)...)
		}
	}
	return out
}

// testRootLinksEveryService checks that the gateway root links every service
// of scripts/services.conf (the one list of services): relation <dir>, the
// service's entry point <gateway>/<dir>/v1, titled with its name.
func testRootLinksEveryService(t *testing.T, c *Cluster) {
	var root struct {
		Links map[string]struct{ Href, Title string } `json:"_links"`
	}
	get(t, c.Gateway+"/", &root)
	for _, s := range c.p.Services() {
		l, ok := root.Links[s.Dir]
		if !ok {
			t.Errorf("the gateway root does not link %s (%s), a line of scripts/services.conf", s.Dir, s.Name)
			continue
		}
		if want := c.Gateway + "/" + s.Dir + "/v1"; l.Href != want || l.Title != s.Name {
			t.Errorf("gateway root link %s = %q %q, want %q %q", s.Dir, l.Href, l.Title, want, s.Name)
		}
	}
}
