// Package portal is the developer portal of Sagittarius: the API reference
// of every service (Swagger UI), the event catalog (every event with its
// publisher, consumers, payload schema and an example) and the choreography
// map, all generated from the contract manifests. It renders HTML, so it is
// served by the gateway (at /docs/), never by a domain service.
//
// The same package renders the generated documentation committed under
// docs/ (the map as SVG, the event catalog as Markdown).
package portal

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"

	"github.com/swaggest/swgui/v5emb"

	"github.com/sagittarius-a/sagittarius/eventbus"
	"github.com/sagittarius-a/sagittarius/internal/contracts"
	"github.com/sagittarius-a/sagittarius/internal/contracts/catalog"
)

// API is one service's manifests as the portal shows them.
type API struct {
	Dir, Title, Name string
	OpenAPI          []byte // JSON
	AsyncAPI         []byte // JSON; nil when the process has no bus
}

// Load reads the manifests in fsys (openapi/<dir>.yaml and
// asyncapi/<dir>.yaml, as committed under contracts/) and builds the event
// catalog.
func Load(fsys fs.FS) ([]API, *catalog.Catalog, error) {
	names, err := fs.Glob(fsys, "openapi/*.yaml")
	if err != nil {
		return nil, nil, err
	}
	if len(names) == 0 {
		return nil, nil, fmt.Errorf("portal: no openapi/*.yaml manifests")
	}
	var apis []API
	var docs []catalog.Doc
	for _, n := range names {
		dir := strings.TrimSuffix(path.Base(n), ".yaml")
		raw, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, nil, err
		}
		a := API{Dir: dir}
		if a.OpenAPI, err = contracts.FromYAML(raw); err != nil {
			return nil, nil, fmt.Errorf("portal: %s: %w", n, err)
		}
		root, err := catalog.Decode(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("portal: %s: %w", n, err)
		}
		a.Title, _ = catalog.Path(root, "info", "title").(string)
		if raw, err := fs.ReadFile(fsys, "asyncapi/"+dir+".yaml"); err == nil {
			if a.AsyncAPI, err = contracts.FromYAML(raw); err != nil {
				return nil, nil, fmt.Errorf("portal: asyncapi/%s.yaml: %w", dir, err)
			}
			d, err := catalog.Parse(dir, raw)
			if err != nil {
				return nil, nil, err
			}
			a.Name = d.Name
			docs = append(docs, d)
		}
		apis = append(apis, a)
	}
	c, err := catalog.Build(eventbus.Exchange, docs)
	if err != nil {
		return nil, nil, err
	}
	return apis, c, nil
}

// New returns the portal for the manifests in fsys, served under prefix
// (e.g. "/docs"; the handler expects the full request path):
//
//	<prefix>/                          index: the services, links, the choreography map
//	<prefix>/apis/<dir>/               Swagger UI of a service's OpenAPI manifest
//	<prefix>/apis/<dir>/openapi.json   the OpenAPI manifest as JSON
//	<prefix>/apis/<dir>/asyncapi.json  the AsyncAPI manifest as JSON
//	<prefix>/events/                   the event catalog
//	<prefix>/choreography.svg          the choreography map
//
// Everything is rendered once, here; the handler only serves bytes and is
// safe for concurrent use.
func New(fsys fs.FS, prefix string) (http.Handler, error) {
	prefix = "/" + strings.Trim(prefix, "/")
	apis, c, err := Load(fsys)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	page := func(p string, ct string, body []byte) {
		mux.HandleFunc("GET "+p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ct)
			w.Header().Set("Cache-Control", "no-cache")
			_, _ = w.Write(body)
		})
	}
	index, err := render(indexTemplate, map[string]any{"Prefix": prefix, "APIs": apis, "Catalog": c})
	if err != nil {
		return nil, err
	}
	page(prefix+"/{$}", "text/html; charset=utf-8", index)
	mux.Handle("GET "+prefix, http.RedirectHandler(prefix+"/", http.StatusMovedPermanently))
	events, err := render(eventsTemplate, map[string]any{"Prefix": prefix, "Events": eventViews(c), "APIs": apis})
	if err != nil {
		return nil, err
	}
	page(prefix+"/events/{$}", "text/html; charset=utf-8", events)
	page(prefix+"/choreography.svg", "image/svg+xml", Map(c))
	for _, a := range apis {
		base := prefix + "/apis/" + a.Dir + "/"
		page(base+"openapi.json", "application/json", a.OpenAPI)
		if a.AsyncAPI != nil {
			page(base+"asyncapi.json", "application/json", a.AsyncAPI)
		}
		ui := v5emb.New(a.Title, base+"openapi.json", base)
		mux.Handle("GET "+base, ui)
	}
	return mux, nil
}

func render(t *template.Template, data any) ([]byte, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// eventView is one event of the catalog page.
type eventView struct {
	catalog.Event
	Anchor         string
	Schema, Sample string
}

func eventViews(c *catalog.Catalog) []eventView {
	out := make([]eventView, 0, len(c.Events))
	for _, e := range c.Events {
		v := eventView{Event: e, Anchor: id(e.Type)}
		if s, err := e.PayloadJSON(); err == nil {
			v.Schema = string(s)
		}
		if ex := e.Example(); ex != nil {
			b, _ := json.MarshalIndent(ex, "", "  ")
			v.Sample = string(b)
		}
		out = append(out, v)
	}
	return out
}

// dirOf maps a service name to its directory, for links.
func dirOf(apis []API, name string) string {
	for _, a := range apis {
		if a.Name == name {
			return a.Dir
		}
	}
	return ""
}

// EventsMarkdown renders the event catalog as Markdown (docs/events.md).
func EventsMarkdown(c *catalog.Catalog) []byte {
	var b bytes.Buffer
	b.WriteString("# Event catalog\n\n")
	b.WriteString("Generated from `contracts/asyncapi/*.yaml` by `scripts/contracts`; do not edit. Every event is published to the\n")
	b.WriteString("fanout exchange `sagittarius-a` with `type` = the event type, `app_id` = the publisher, `message_id` = the payload's\n")
	b.WriteString("`uuid`, persistent delivery and `application/json`; the payload is `{\"uuid\", \"fired_at\", \"<entity>\": {...}}`.\n")
	b.WriteString("Payload schemas and examples: the AsyncAPI manifests, or the portal at http://127.0.0.1:8080/docs/events/.\n\n")
	b.WriteString("![choreography](choreography.svg)\n\n")
	b.WriteString("| event (type) | publisher | entity | consumers |\n|---|---|---|---|\n")
	for _, e := range c.Events {
		cons := strings.Join(e.Consumers, ", ")
		if cons == "" {
			cons = "(none)"
		}
		pub := e.Publisher
		if pub == "" {
			pub = "(none)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s |\n", e.Type, pub, e.EntityKey, cons)
	}
	b.WriteString("\n## By service\n\n")
	services := append([]catalog.Service(nil), c.Services...)
	sort.Slice(services, func(i, j int) bool { return services[i].Name < services[j].Name })
	for _, s := range services {
		fmt.Fprintf(&b, "- **%s** (services/%s, queue `%s`) publishes %s; consumes %s.\n", s.Name, s.Dir, s.Name, codes(s.Publishes), codes(s.Consumes))
	}
	return b.Bytes()
}

func codes(ts []string) string {
	if len(ts) == 0 {
		return "nothing"
	}
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = "`" + t[strings.LastIndex(t, ".")+1:] + "`"
	}
	return strings.Join(out, ", ")
}
