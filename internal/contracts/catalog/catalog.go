// Package catalog reads the AsyncAPI manifests of every service and answers
// the platform-wide questions no single manifest can: who publishes each
// event, who consumes it, which consumed events nobody publishes. The
// developer portal (event catalog, choreography map) and the cross-checks of
// internal/contracts/lint are built on it.
package catalog

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Doc is one service's AsyncAPI manifest, decoded as generic JSON values.
type Doc struct {
	Dir  string         // the service directory (the manifest's file name)
	Name string         // the service: info.title, e.g. sales.orders
	Root map[string]any // the whole document
}

// Decode decodes a manifest (YAML or JSON) into generic JSON values: maps,
// slices, strings, float64, bools and nil, as encoding/json would.
func Decode(manifest []byte) (map[string]any, error) {
	var root map[string]any
	if err := yaml.Unmarshal(manifest, &root); err != nil {
		return nil, err
	}
	root, _ = normalize(root).(map[string]any)
	if root == nil {
		return nil, fmt.Errorf("not an object")
	}
	return root, nil
}

// Parse decodes an AsyncAPI manifest (YAML or JSON) of the service in dir.
func Parse(dir string, manifest []byte) (Doc, error) {
	root, err := Decode(manifest)
	if err != nil {
		return Doc{}, fmt.Errorf("catalog: %s: %w", dir, err)
	}
	name, _ := Path(root, "info", "title").(string)
	if name == "" {
		return Doc{}, fmt.Errorf("catalog: %s: no info.title", dir)
	}
	return Doc{Dir: dir, Name: name, Root: root}, nil
}

// normalize turns YAML-decoded values into JSON-like ones: integers become
// float64, as encoding/json would decode them.
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = normalize(x)
		}
		return t
	case []any:
		for i, x := range t {
			t[i] = normalize(x)
		}
		return t
	case int:
		return float64(t)
	case int64:
		return float64(t)
	case uint64:
		return float64(t)
	}
	return v
}

// Path walks obj along keys and returns the value there, or nil.
func Path(obj any, keys ...string) any {
	for _, k := range keys {
		m, ok := obj.(map[string]any)
		if !ok {
			return nil
		}
		obj = m[k]
	}
	return obj
}

// Messages returns the messages of the operation of channel ("subscribe"
// or "publish"): their component names (the event types), sorted.
func (d Doc) Messages(channel, op string) []string {
	msg := Path(d.Root, "channels", channel, op, "message")
	var refs []any
	if m, ok := msg.(map[string]any); ok {
		if alts, ok := m["oneOf"].([]any); ok {
			refs = alts
		} else {
			refs = []any{m}
		}
	}
	var out []string
	for _, r := range refs {
		ref, _ := Path(r, "$ref").(string)
		if name, ok := strings.CutPrefix(ref, "#/components/messages/"); ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Published returns the event types the service publishes: the messages of
// the subscribe operation of the exchange channel.
func (d Doc) Published(exchange string) []string { return d.Messages(exchange, "subscribe") }

// Consumed returns the event types the service consumes: the messages of
// the publish operation of its queue channel (named after the service).
func (d Doc) Consumed() []string { return d.Messages(d.Name, "publish") }

// Message returns the component message of type t, or nil.
func (d Doc) Message(t string) map[string]any {
	m, _ := Path(d.Root, "components", "messages", t).(map[string]any)
	return m
}

// Schemas returns the document's named schemas (components.schemas).
func (d Doc) Schemas() map[string]any {
	m, _ := Path(d.Root, "components", "schemas").(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m
}

// Event is one event type of the platform.
type Event struct {
	Type      string   // sales.orders.order_placed
	Name      string   // order_placed
	Publisher string   // sales.orders ("" when no manifest publishes it)
	Consumers []string // services that handle it, sorted
	EntityKey string   // the payload key of the entity
	Summary   string
	// Message is the publisher's message object (payload, headers,
	// bindings, examples); Schemas the publisher's named schemas that its
	// payload refers to.
	Message map[string]any
	Schemas map[string]any
}

// Consumption is one event type one service consumes, with the message as
// the consumer's manifest describes it (its expectation of the payload).
type Consumption struct {
	Consumer string
	Type     string
	Message  map[string]any
	Schemas  map[string]any
}

// Service is one service with a bus.
type Service struct {
	Dir, Name string
	Publishes []string // event types, sorted
	Consumes  []string // event types, sorted
}

// Catalog is the platform's event catalog.
type Catalog struct {
	Services     []Service      // sorted by name
	Events       []Event        // every published or consumed type, sorted by type
	Consumptions []Consumption  // sorted by consumer, then type
	byType       map[string]int // index into Events
}

// Build makes the catalog of the given AsyncAPI manifests. exchange is the
// fanout exchange channel (sagittarius-a). Two manifests publishing the
// same event type is an error.
func Build(exchange string, docs []Doc) (*Catalog, error) {
	c := &Catalog{byType: map[string]int{}}
	sort.Slice(docs, func(i, j int) bool { return docs[i].Name < docs[j].Name })
	event := func(t string) *Event {
		i, ok := c.byType[t]
		if !ok {
			name := t
			if k := strings.LastIndex(t, "."); k >= 0 {
				name = t[k+1:]
			}
			c.Events = append(c.Events, Event{Type: t, Name: name})
			i = len(c.Events) - 1
			c.byType[t] = i
		}
		return &c.Events[i]
	}
	for _, d := range docs {
		s := Service{Dir: d.Dir, Name: d.Name, Publishes: d.Published(exchange), Consumes: d.Consumed()}
		c.Services = append(c.Services, s)
		for _, t := range s.Publishes {
			e := event(t)
			if e.Publisher != "" {
				return nil, fmt.Errorf("catalog: %s is published by both %s and %s", t, e.Publisher, d.Name)
			}
			m := d.Message(t)
			e.Publisher = d.Name
			e.Message = m
			e.Schemas = d.Schemas()
			e.EntityKey, _ = m["x-entity-key"].(string)
			e.Summary, _ = m["summary"].(string)
		}
	}
	for _, d := range docs {
		for _, t := range d.Consumed() {
			e := event(t)
			e.Consumers = append(e.Consumers, d.Name)
			m := d.Message(t)
			if e.Publisher == "" && e.Message == nil {
				e.Message, e.Schemas = m, d.Schemas()
				e.EntityKey, _ = m["x-entity-key"].(string)
				e.Summary, _ = m["summary"].(string)
			}
			c.Consumptions = append(c.Consumptions, Consumption{Consumer: d.Name, Type: t, Message: m, Schemas: d.Schemas()})
		}
	}
	sort.Slice(c.Events, func(i, j int) bool { return c.Events[i].Type < c.Events[j].Type })
	for i, e := range c.Events {
		c.byType[e.Type] = i
		sort.Strings(c.Events[i].Consumers)
	}
	return c, nil
}

// Event returns the event of type t.
func (c *Catalog) Event(t string) (Event, bool) {
	i, ok := c.byType[t]
	if !ok {
		return Event{}, false
	}
	return c.Events[i], true
}

// Unpublished returns the consumptions of event types no manifest publishes.
func (c *Catalog) Unpublished() []Consumption {
	var out []Consumption
	for _, cs := range c.Consumptions {
		if e, _ := c.Event(cs.Type); e.Publisher == "" {
			out = append(out, cs)
		}
	}
	return out
}

// Example returns the first example payload of e's message, or nil.
func (e Event) Example() any {
	exs, _ := e.Message["examples"].([]any)
	if len(exs) == 0 {
		return nil
	}
	return Path(exs[0], "payload")
}

// PayloadJSON returns e's payload schema with the named schemas it uses
// under "components" (so its $refs resolve), as indented JSON.
func (e Event) PayloadJSON() ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"payload":    e.Message["payload"],
		"components": map[string]any{"schemas": Used(e.Message["payload"], e.Schemas)},
	}, "", "  ")
}

// Used returns the named schemas that schema refers to, directly or
// through other named schemas.
func Used(schema any, defs map[string]any) map[string]any {
	out := map[string]any{}
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			if ref, ok := t["$ref"].(string); ok {
				name := strings.TrimPrefix(ref, "#/components/schemas/")
				if _, seen := out[name]; !seen {
					if def, ok := defs[name]; ok {
						out[name] = def
						walk(def)
					}
				}
			}
			for _, x := range t {
				walk(x)
			}
		case []any:
			for _, x := range t {
				walk(x)
			}
		}
	}
	walk(schema)
	return out
}
