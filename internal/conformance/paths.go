package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/contracts/catalog"
	"github.com/sagittarius-a/sagittarius/internal/contracts/lint"
)

// ManifestPaths checks every path of the OpenAPI manifests in fsys
// (openapi/<dir>.yaml) against the resource naming rules.
func ManifestPaths(fsys fs.FS) ([]Violation, error) {
	names, err := fs.Glob(fsys, "openapi/*.yaml")
	if err != nil {
		return nil, err
	}
	var out []Violation
	for _, n := range names {
		raw, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		doc, err := catalog.Decode(raw)
		if err != nil {
			return nil, fmt.Errorf("conformance: %s: %w", n, err)
		}
		paths, _ := doc["paths"].(map[string]any)
		keys := make([]string, 0, len(paths))
		for p := range paths {
			keys = append(keys, p)
		}
		sort.Strings(keys)
		for _, p := range keys {
			for _, msg := range lint.ResourcePath(p, false) {
				out = append(out, Violation{Rule: "resource-naming", Subject: n + " " + p, Detail: msg})
			}
		}
	}
	return out, nil
}

// CrawlOptions configure Crawl.
type CrawlOptions struct {
	// Gateway is the platform's entry point, e.g. http://127.0.0.1:8080.
	Gateway string
	// MaxPages bounds the number of documents fetched; default 500.
	MaxPages int
	// Committed, when set, holds the committed manifests
	// (openapi/<dir>.yaml, asyncapi/<dir>.yaml): what each service serves at
	// its contracts link must equal them.
	Committed fs.FS
	// Client does the requests; default http.DefaultClient.
	Client *http.Client
}

// CrawlReport is what a crawl saw.
type CrawlReport struct {
	Pages      int      // HAL documents fetched
	Paths      []string // distinct paths visited, sorted
	Contracts  int      // served manifests compared with the committed ones
	Violations []Violation
}

// Crawl follows the HAL links of the running platform from the gateway root,
// like a client would (every non-templated link on the gateway's origin,
// in _links and in _embedded resources; each path once), and checks:
//
//	resource-naming  every path visited: /<prefix>/v1/plural-nouns/{item}/..., no verbs, at most collection/item/collection
//	hal              every answer is application/hal+json with _links.self
//	link             every link answers 200
//	contract         what a service serves at its contracts link equals the committed manifests
func Crawl(ctx context.Context, opts CrawlOptions) (CrawlReport, error) {
	if opts.MaxPages == 0 {
		opts.MaxPages = 500
	}
	if opts.Client == nil {
		opts.Client = http.DefaultClient
	}
	root, err := url.Parse(strings.TrimRight(opts.Gateway, "/") + "/")
	if err != nil {
		return CrawlReport{}, fmt.Errorf("conformance: gateway URL: %w", err)
	}
	var rep CrawlReport
	add := func(rule, subject, format string, args ...any) {
		rep.Violations = append(rep.Violations, Violation{Rule: rule, Subject: subject, Detail: fmt.Sprintf(format, args...)})
	}
	seen := map[string]bool{}
	queue := []*url.URL{root}
	seen[root.Path] = true
	for len(queue) > 0 && rep.Pages < opts.MaxPages {
		u := queue[0]
		queue = queue[1:]
		status, ct, body, err := fetch(ctx, opts.Client, u.String())
		if err != nil {
			return rep, err
		}
		rep.Pages++
		subject := "GET " + u.RequestURI()
		if status == http.StatusForbidden && ct == "application/problem+json" {
			// A resource of another role (the operator's failed messages for
			// a staff crawler): the link leads somewhere, refused as documented.
			continue
		}
		if status != http.StatusOK {
			add("link", subject, "answered %d", status)
			continue
		}
		if ct != "application/hal+json" {
			add("hal", subject, "content type %q, want application/hal+json", ct)
			continue
		}
		var doc map[string]any
		if err := json.Unmarshal(body, &doc); err != nil {
			add("hal", subject, "not a JSON object: %v", err)
			continue
		}
		if hrefOf(catalog.Path(doc, "_links", "self")) == "" {
			add("hal", subject, "no _links.self")
		}
		if opts.Committed != nil {
			href := hrefOf(catalog.Path(doc, "_links", contracts.ContractsRel))
			if dir, ok := apiRoot(u.Path); ok && href == "" {
				if _, err := fs.Stat(opts.Committed, "openapi/"+dir+".yaml"); err == nil {
					add("contract", subject, "the API root of %s does not link its manifests (rel %s)", dir, contracts.ContractsRel)
				}
			}
			if href != "" {
				vs, n, err := compareContracts(ctx, opts, u, href)
				if err != nil {
					return rep, err
				}
				rep.Contracts += n
				rep.Violations = append(rep.Violations, vs...)
			}
		}
		for _, l := range links(doc) {
			if l.templated || (l.typ != "" && l.typ != "application/hal+json") {
				continue // a URI template, or a document that is not a resource (a manifest, the portal)
			}
			next, err := u.Parse(l.href)
			if err != nil {
				add("link", subject, "unparsable link %q", l.href)
				continue
			}
			if next.Host != root.Host || next.Scheme != root.Scheme || seen[next.Path] {
				continue
			}
			if strings.HasPrefix(next.Path, "/docs") {
				continue // the portal: pages for people, not resources
			}
			seen[next.Path] = true
			queue = append(queue, next)
		}
	}
	for p := range seen {
		rep.Paths = append(rep.Paths, p)
		if p == "/" {
			continue
		}
		// Strip the gateway prefix of the service: /orders/v1/orders/42 -> /v1/orders/42.
		rest := p
		if segs := strings.SplitN(strings.TrimPrefix(p, "/"), "/", 2); len(segs) == 2 && !versionRE.MatchString(segs[0]) {
			rest = "/" + segs[1]
		}
		for _, msg := range lint.ResourcePath(rest, true) {
			add("resource-naming", "path "+p, "%s", msg)
		}
	}
	sort.Strings(rep.Paths)
	Sort(rep.Violations)
	return rep, nil
}

// compareContracts fetches the contracts index at href (found on the
// document at from) and each manifest it links, and compares them with the
// committed ones.
func compareContracts(ctx context.Context, opts CrawlOptions, from *url.URL, href string) ([]Violation, int, error) {
	idxURL, err := from.Parse(href)
	if err != nil {
		return []Violation{{Rule: "contract", Subject: "GET " + from.RequestURI(), Detail: "unparsable contracts link " + href}}, 0, nil
	}
	// The service's gateway prefix names its manifests: /orders/v1/contracts -> orders.
	dir := strings.SplitN(strings.TrimPrefix(idxURL.Path, "/"), "/", 2)[0]
	status, _, body, err := fetch(ctx, opts.Client, idxURL.String())
	if err != nil {
		return nil, 0, err
	}
	subject := "GET " + idxURL.RequestURI()
	if status != http.StatusOK {
		return []Violation{{Rule: "contract", Subject: subject, Detail: fmt.Sprintf("answered %d", status)}}, 0, nil
	}
	var idx map[string]any
	_ = json.Unmarshal(body, &idx)
	var out []Violation
	n := 0
	for _, kind := range []string{"openapi", "asyncapi"} {
		committed, cerr := fs.ReadFile(opts.Committed, kind+"/"+dir+".yaml")
		served := hrefOf(catalog.Path(idx, "_links", kind))
		switch {
		case served == "" && cerr == nil:
			out = append(out, Violation{Rule: "contract", Subject: subject, Detail: fmt.Sprintf("no %s link, but %s/%s.yaml is committed", kind, kind, dir)})
			continue
		case served == "":
			continue
		case cerr != nil:
			out = append(out, Violation{Rule: "contract", Subject: subject, Detail: fmt.Sprintf("serves %s, but no %s/%s.yaml is committed", kind, kind, dir)})
			continue
		}
		mu, err := idxURL.Parse(served)
		if err != nil {
			continue
		}
		status, _, body, err := fetch(ctx, opts.Client, mu.String())
		if err != nil {
			return nil, n, err
		}
		n++
		if status != http.StatusOK {
			out = append(out, Violation{Rule: "contract", Subject: "GET " + mu.RequestURI(), Detail: fmt.Sprintf("answered %d", status)})
			continue
		}
		want, err := contracts.FromYAML(committed)
		if err != nil {
			return nil, n, err
		}
		var a, b any
		if json.Unmarshal(body, &a) != nil || json.Unmarshal(want, &b) != nil || !reflect.DeepEqual(a, b) {
			out = append(out, Violation{Rule: "contract", Subject: "GET " + mu.RequestURI(),
				Detail: fmt.Sprintf("the running service serves a different %s than the committed contracts/%s/%s.yaml (stale binary, or wiring that differs from internal/contracts/platform)", kind, kind, dir)})
		}
	}
	return out, n, nil
}

var versionRE = regexp.MustCompile(`^v[0-9]+$`)

// apiRoot reports whether p is the root of a service's API through the
// gateway, /<dir>/v<n>, and returns dir.
func apiRoot(p string) (string, bool) {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	if len(segs) == 2 && versionRE.MatchString(segs[1]) {
		return segs[0], true
	}
	return "", false
}

// link is one HAL link.
type link struct {
	href, typ string
	templated bool
}

// links returns every link of doc: its _links and, recursively, those of
// its _embedded resources.
func links(doc map[string]any) []link {
	var out []link
	if ls, ok := doc["_links"].(map[string]any); ok {
		rels := make([]string, 0, len(ls))
		for r := range ls {
			rels = append(rels, r)
		}
		sort.Strings(rels)
		for _, r := range rels {
			switch v := ls[r].(type) {
			case map[string]any:
				out = append(out, toLink(v))
			case []any:
				for _, x := range v {
					if m, ok := x.(map[string]any); ok {
						out = append(out, toLink(m))
					}
				}
			}
		}
	}
	if emb, ok := doc["_embedded"].(map[string]any); ok {
		for _, v := range emb {
			switch t := v.(type) {
			case map[string]any:
				out = append(out, links(t)...)
			case []any:
				for _, x := range t {
					if m, ok := x.(map[string]any); ok {
						out = append(out, links(m)...)
					}
				}
			}
		}
	}
	return out
}

func toLink(m map[string]any) link {
	h, _ := m["href"].(string)
	t, _ := m["type"].(string)
	tpl, _ := m["templated"].(bool)
	return link{href: h, typ: t, templated: tpl}
}

func hrefOf(v any) string {
	if l, ok := v.([]any); ok && len(l) > 0 {
		v = l[0]
	}
	h, _ := catalog.Path(v, "href").(string)
	return h
}

// fetch GETs u and returns status, media type and body (at most 8 MiB).
func fetch(ctx context.Context, c *http.Client, u string) (int, string, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, "", nil, err
	}
	req.Header.Set("Accept", "application/hal+json, application/json")
	res, err := c.Do(req)
	if err != nil {
		return 0, "", nil, fmt.Errorf("conformance: GET %s: %w", u, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return 0, "", nil, fmt.Errorf("conformance: GET %s: %w", u, err)
	}
	mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	return res.StatusCode, mt, body, nil
}
