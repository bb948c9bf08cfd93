// Package journey is the domain of ops.journeys: the journeys of the
// platform's business transactions, derived from the events they are made of
// and from what each should do next, declared as data (journeys.yaml).
//
// A journey is every event that carries one correlation id, in order of
// occurrence. Its kind, state, what it waits for and since when are derived
// (Derive) from its events and from the events known for its subject (the
// business id, such as the order id, that journeys of one order share), never
// stored as a sequence of transitions: events that arrive late, twice or out
// of order give the same journey.
package journey

import (
	_ "embed"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

//go:embed journeys.yaml
var definitionsYAML []byte

// States of a journey. A definition may declare more settled states (for the
// order, awaiting_dispatch and awaiting_delivery); they are not stuck.
const (
	StateInProgress = "in_progress" // a step is open and none overran
	StateStuck      = "stuck"       // a step stayed open longer than it may
	StateCompleted  = "completed"   // nothing left to do
	StateUntracked  = "untracked"   // no definition starts with its earliest events: recorded, never stuck
)

// Step is one thing a journey waits for (see journeys.yaml for the rules).
type Step struct {
	Name   string
	After  []string      // event types that open it
	Expect []string      // event types that close it
	If     []string      // it applies only when one of these is known for the subject (empty: always)
	Unless []string      // it does not apply once one of these is known for the subject
	Within time.Duration // the longest it may stay open
}

// Settled is a named state of a journey with no open step.
type Settled struct {
	State  string
	If     []string
	Unless []string
}

// Definition is one kind of journey.
type Definition struct {
	Name        string
	Description string
	Subject     string // the id kind journeys of one business object share (order_id)
	Starts      string // the event type that starts it
	Steps       []*Step
	Settled     []Settled
}

// Entity says which business ids and links an event entity carries.
type Entity struct {
	IDs   map[string]string // entity field -> id kind
	Links map[string]string // relation -> path template under the public base URL ({field})
}

// Catalog is the set of definitions, entities and services the service
// follows. It is immutable once loaded and safe for concurrent use.
type Catalog struct {
	Definitions []*Definition
	Steps       map[string]*Step
	Entities    map[string]Entity
	Services    map[string]string // service name -> gateway prefix (dir)
}

type fileFormat struct {
	Entities map[string]struct {
		IDs   map[string]string `yaml:"ids"`
		Links map[string]string `yaml:"links"`
	} `yaml:"entities"`
	Services map[string]string `yaml:"services"`
	Steps    map[string]struct {
		After  []string `yaml:"after"`
		Expect []string `yaml:"expect"`
		If     []string `yaml:"if"`
		Unless []string `yaml:"unless"`
		Within string   `yaml:"within"`
	} `yaml:"steps"`
	Journeys []struct {
		Name        string   `yaml:"name"`
		Description string   `yaml:"description"`
		Subject     string   `yaml:"subject"`
		Starts      string   `yaml:"starts"`
		Steps       []string `yaml:"steps"`
		Settled     []struct {
			State  string   `yaml:"state"`
			If     []string `yaml:"if"`
			Unless []string `yaml:"unless"`
		} `yaml:"settled"`
	} `yaml:"journeys"`
}

// Default returns the catalog of journeys.yaml, embedded in the binary.
func Default() (*Catalog, error) { return Load(definitionsYAML) }

// Load parses and checks a catalog in the format of journeys.yaml. Every
// error names what is wrong; unknown keys are refused.
func Load(data []byte) (*Catalog, error) {
	var f fileFormat
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("journey definitions: %w", err)
	}
	c := &Catalog{Steps: map[string]*Step{}, Entities: map[string]Entity{}, Services: f.Services}
	var errs []error
	for name, e := range f.Entities {
		c.Entities[name] = Entity{IDs: e.IDs, Links: e.Links}
	}
	for name, s := range f.Steps {
		d, err := time.ParseDuration(s.Within)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("step %s: within %q: want a positive duration such as 30s", name, s.Within))
		}
		if len(s.After) == 0 || len(s.Expect) == 0 {
			errs = append(errs, fmt.Errorf("step %s: after and expect are required", name))
		}
		c.Steps[name] = &Step{Name: name, After: s.After, Expect: s.Expect, If: s.If, Unless: s.Unless, Within: d}
	}
	seen := map[string]bool{}
	starts := map[string]string{}
	for _, j := range f.Journeys {
		if j.Name == "" || seen[j.Name] {
			errs = append(errs, fmt.Errorf("journey %q: a name is required and must be unique", j.Name))
		}
		seen[j.Name] = true
		if j.Starts == "" {
			errs = append(errs, fmt.Errorf("journey %s: starts is required", j.Name))
		} else if other, dup := starts[j.Starts]; dup {
			errs = append(errs, fmt.Errorf("journey %s: %s already starts %s", j.Name, j.Starts, other))
		}
		starts[j.Starts] = j.Name
		d := &Definition{Name: j.Name, Description: j.Description, Subject: j.Subject, Starts: j.Starts}
		for _, sn := range j.Steps {
			s, ok := c.Steps[sn]
			if !ok {
				errs = append(errs, fmt.Errorf("journey %s: no step %q", j.Name, sn))
				continue
			}
			d.Steps = append(d.Steps, s)
		}
		for _, s := range j.Settled {
			switch s.State {
			case "", StateInProgress, StateStuck, StateCompleted, StateUntracked:
				errs = append(errs, fmt.Errorf("journey %s: settled state %q: want a name of its own", j.Name, s.State))
			}
			d.Settled = append(d.Settled, Settled{State: s.State, If: s.If, Unless: s.Unless})
		}
		c.Definitions = append(c.Definitions, d)
	}
	return c, errors.Join(errs...)
}

// WithLimits returns a copy of c whose steps' limits are overridden by spec:
// "step=duration,…", where the step "*" sets every step not named
// (JOURNEY_STEP_LIMITS, e.g. "payment=2s,*=5s"). An empty spec returns c.
func (c *Catalog) WithLimits(spec string) (*Catalog, error) {
	if strings.TrimSpace(spec) == "" {
		return c, nil
	}
	limits := map[string]time.Duration{}
	for _, part := range strings.Split(spec, ",") {
		name, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		d, err := time.ParseDuration(v)
		if !ok || err != nil || d <= 0 {
			return nil, fmt.Errorf("step limit %q: want step=duration, e.g. payment=2s or *=5s", part)
		}
		if _, known := c.Steps[name]; !known && name != "*" {
			return nil, fmt.Errorf("step limit %q: no step %q", part, name)
		}
		limits[name] = d
	}
	out := &Catalog{Steps: map[string]*Step{}, Entities: c.Entities, Services: c.Services}
	for name, s := range c.Steps {
		cp := *s
		if d, ok := limits[name]; ok {
			cp.Within = d
		} else if d, ok := limits["*"]; ok {
			cp.Within = d
		}
		out.Steps[name] = &cp
	}
	for _, d := range c.Definitions {
		cp := *d
		cp.Steps = nil
		for _, s := range d.Steps {
			cp.Steps = append(cp.Steps, out.Steps[s.Name])
		}
		out.Definitions = append(out.Definitions, &cp)
	}
	return out, nil
}

// EventTypes returns every event type the catalog names, sorted.
func (c *Catalog) EventTypes() []string {
	set := map[string]bool{}
	add := func(ts []string) {
		for _, t := range ts {
			set[t] = true
		}
	}
	for _, s := range c.Steps {
		add(s.After)
		add(s.Expect)
		add(s.If)
		add(s.Unless)
	}
	for _, d := range c.Definitions {
		add([]string{d.Starts})
		for _, s := range d.Settled {
			add(s.If)
			add(s.Unless)
		}
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// StepNames returns the names of every step, sorted.
func (c *Catalog) StepNames() []string {
	out := make([]string, 0, len(c.Steps))
	for n := range c.Steps {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// States returns every state a journey can be in: the four of every journey
// and the settled states the definitions declare.
func (c *Catalog) States() []string {
	out := []string{StateInProgress, StateStuck, StateCompleted, StateUntracked}
	for _, d := range c.Definitions {
		for _, s := range d.Settled {
			if !contains(out, s.State) {
				out = append(out, s.State)
			}
		}
	}
	return out
}

// Definition returns the definition named name, or nil.
func (c *Catalog) Definition(name string) *Definition {
	for _, d := range c.Definitions {
		if d.Name == name {
			return d
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
