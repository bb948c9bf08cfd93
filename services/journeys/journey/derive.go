package journey

import (
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"time"
)

// ErrNotFound is returned for a journey that does not exist.
var ErrNotFound = errors.New("journey: not found")

// Event is one event of a journey, as the timeline shows it.
type Event struct {
	UUID        string
	Type        string // domain.subdomain.event_name
	Publisher   string // app_id
	FiredAt     time.Time
	CausationID string // the uuid of the event that caused it; "" for the first of a flow
	Actor       string // who caused it, where the event records one (actor header)
	TraceID     string // from the traceparent header; "" without one
	EntityKey   string // the payload member holding the entity (order, payment…)
}

// TraceID returns the trace id of a W3C traceparent, or "".
func TraceID(traceparent string) string {
	if len(traceparent) != 55 || traceparent[2] != '-' || traceparent[35] != '-' {
		return ""
	}
	id := traceparent[3:35]
	if strings.Trim(id, "0123456789abcdef") != "" || strings.Trim(id, "0") == "" {
		return ""
	}
	return id
}

// Sort orders events by occurrence: by fired_at; among events fired in the
// same millisecond, a cause before what it caused; then by type and uuid, so
// that the order never depends on arrival.
func Sort(events []Event) {
	depth := map[string]int{}
	byID := map[string]*Event{}
	for i := range events {
		byID[events[i].UUID] = &events[i]
	}
	var depthOf func(e *Event, guard int) int
	depthOf = func(e *Event, guard int) int {
		if d, ok := depth[e.UUID]; ok {
			return d
		}
		d := 0
		if c, ok := byID[e.CausationID]; ok && guard < len(events) {
			d = depthOf(c, guard+1) + 1
		}
		depth[e.UUID] = d
		return d
	}
	for i := range events {
		depthOf(&events[i], 0)
	}
	sort.SliceStable(events, func(i, j int) bool {
		a, b := events[i], events[j]
		if !a.FiredAt.Equal(b.FiredAt) {
			return a.FiredAt.Before(b.FiredAt)
		}
		if depth[a.UUID] != depth[b.UUID] {
			return depth[a.UUID] < depth[b.UUID]
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		return a.UUID < b.UUID
	})
}

// Wait is an open step: what the journey waits for and since when.
type Wait struct {
	Step     string
	Expect   []string  // any of these event types closes it
	Since    time.Time // fired_at of the event that opened it
	Deadline time.Time // Since + the step's limit
	Overdue  bool      // the deadline passed
}

// Status is what Derive finds of a journey.
type Status struct {
	Kind  string // the definition's name; "" for an untracked journey
	State string
	// Waiting lists the open steps, earliest first.
	Waiting []Wait
	// StuckStep is the first overdue step of a stuck journey.
	StuckStep string
	// Since is when the earliest open step opened; zero without one.
	Since time.Time
	// Deadline is the earliest deadline of the open steps that are not yet
	// overdue: when the journey must be looked at again; zero without one.
	Deadline time.Time
}

// WaitingFor returns the event types that would close an open step.
func (s Status) WaitingFor() []string {
	var out []string
	for _, w := range s.Waiting {
		for _, t := range w.Expect {
			if !contains(out, t) {
				out = append(out, t)
			}
		}
	}
	return out
}

// Derive returns the status at now of the journey made of own (its events,
// in any order) given history (the events known for its subject, own
// included or not). It is a pure function of its arguments.
func (c *Catalog) Derive(own, history []Event, now time.Time) Status {
	own = append([]Event(nil), own...)
	Sort(own)
	var def *Definition
	for _, e := range own {
		for _, d := range c.Definitions {
			if d.Starts == e.Type {
				def = d
				break
			}
		}
		if def != nil {
			break
		}
	}
	if def == nil {
		return Status{State: StateUntracked}
	}
	known := map[string]bool{}
	for _, e := range own {
		known[e.Type] = true
	}
	for _, e := range history {
		known[e.Type] = true
	}
	anyKnown := func(ts []string) bool {
		for _, t := range ts {
			if known[t] {
				return true
			}
		}
		return false
	}
	st := Status{Kind: def.Name}
	for _, s := range def.Steps {
		if (len(s.If) > 0 && !anyKnown(s.If)) || anyKnown(s.Unless) || anyKnown(s.Expect) {
			continue
		}
		var opened *Event
		for i := range own {
			if contains(s.After, own[i].Type) {
				opened = &own[i]
				break
			}
		}
		if opened == nil {
			continue
		}
		w := Wait{Step: s.Name, Expect: s.Expect, Since: opened.FiredAt, Deadline: opened.FiredAt.Add(s.Within)}
		w.Overdue = !now.Before(w.Deadline)
		st.Waiting = append(st.Waiting, w)
	}
	sort.SliceStable(st.Waiting, func(i, j int) bool { return st.Waiting[i].Since.Before(st.Waiting[j].Since) })
	for _, w := range st.Waiting {
		if st.Since.IsZero() || w.Since.Before(st.Since) {
			st.Since = w.Since
		}
		if w.Overdue {
			if st.StuckStep == "" {
				st.StuckStep = w.Step
			}
		} else if st.Deadline.IsZero() || w.Deadline.Before(st.Deadline) {
			st.Deadline = w.Deadline
		}
	}
	switch {
	case st.StuckStep != "":
		st.State = StateStuck
	case len(st.Waiting) > 0:
		st.State = StateInProgress
	default:
		st.State = StateCompleted
		for _, s := range def.Settled {
			if (len(s.If) == 0 || anyKnown(s.If)) && !anyKnown(s.Unless) {
				st.State = s.State
				break
			}
		}
	}
	return st
}

// IDs returns the business ids an entity carries (id kind -> value), as the
// catalog's entities declare them: e.g. {"order_id": …, "customer_id": …} for
// an order. Fields that are absent, empty or not strings are skipped.
func (c *Catalog) IDs(entityKey string, entity json.RawMessage) map[string]string {
	e, ok := c.Entities[entityKey]
	if !ok || len(entity) == 0 {
		return nil
	}
	fields := entityFields(entity)
	out := map[string]string{}
	for field, kind := range e.IDs {
		if v := fields[field]; v != "" {
			out[kind] = v
		}
	}
	return out
}

// Links returns the links (relation -> path under the public base URL) an
// entity gives its journey, for the relations whose fields it carries.
func (c *Catalog) Links(entityKey string, entity json.RawMessage) map[string]string {
	e, ok := c.Entities[entityKey]
	if !ok || len(entity) == 0 {
		return nil
	}
	fields := entityFields(entity)
	out := map[string]string{}
	for rel, tmpl := range e.Links {
		path, ok := expand(tmpl, fields)
		if ok {
			out[rel] = path
		}
	}
	return out
}

// entityFields returns the string members of a JSON object.
func entityFields(entity json.RawMessage) map[string]string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(entity, &m); err != nil {
		return nil
	}
	out := map[string]string{}
	for k, v := range m {
		var s string
		if json.Unmarshal(v, &s) == nil && s != "" {
			out[k] = s
		}
	}
	return out
}

// expand replaces each {field} of tmpl by the field's value; it reports false
// when a field is missing or would not be one path segment.
func expand(tmpl string, fields map[string]string) (string, bool) {
	var b strings.Builder
	for {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			b.WriteString(tmpl)
			return b.String(), true
		}
		j := strings.IndexByte(tmpl[i:], '}')
		if j < 0 {
			return "", false
		}
		v := fields[tmpl[i+1:i+j]]
		if v == "" || strings.ContainsAny(v, "/?#%") {
			return "", false
		}
		b.WriteString(tmpl[:i])
		b.WriteString(v)
		tmpl = tmpl[i+j+1:]
	}
}
