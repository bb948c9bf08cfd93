package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// Printer writes timestamped lines; it is safe for concurrent use.
type Printer struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// Printf writes one line: "15:04:05.000  [label] message".
func (p *Printer) Printf(label, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now
	if p.now != nil {
		now = p.now
	}
	fmt.Fprintf(p.w, "%s  %-24s %s\n", now().Format("15:04:05.000"), "["+label+"]", fmt.Sprintf(format, args...))
}

// Journey follows one order and the resources it links: it polls them and
// prints every status change as it happens.
type Journey struct {
	Label  string
	client *Client
	out    *Printer
	order  string // the order's href

	// last read of each followed resource, by relation ("order", "reservation", "payment", "shipment")
	res    map[string]Resource
	states map[string]string
}

// followed are the order's relations whose status the journey prints.
var followed = []string{"reservation", "payment", "shipment"}

// NewJourney follows the order at href.
func NewJourney(label string, c *Client, out *Printer, href string) *Journey {
	return &Journey{Label: label, client: c, out: out, order: href, res: map[string]Resource{}, states: map[string]string{}}
}

// describe is the printed state of a resource: its status, and its reason if any.
func describe(r Resource) string {
	s := r.String("status")
	for _, k := range []string{"cancellation_reason", "reason"} {
		if v := r.String(k); v != "" {
			s += " (" + v + ")"
		}
	}
	return s
}

// Poll reads the order and every related resource it links once, printing
// what changed. A related resource that does not exist yet (404) is skipped.
func (j *Journey) Poll(ctx context.Context) error {
	o, err := j.client.Get(ctx, j.order)
	if err != nil {
		return err
	}
	j.record("order", o)
	for _, rel := range followed {
		href, err := o.Link(rel)
		if err != nil {
			continue
		}
		r, err := j.client.Get(ctx, href)
		if StatusOf(err) == 404 {
			continue // not there yet: the service has not handled the event
		}
		if err != nil {
			return err
		}
		j.record(rel, r)
	}
	return nil
}

func (j *Journey) record(rel string, r Resource) {
	j.res[rel] = r
	d := describe(r)
	if j.states[rel] == d {
		return
	}
	j.states[rel] = d
	j.out.Printf(j.Label, "%-12s %s", rel, d)
}

// Status returns the status member of the last read of rel ("" when never seen).
func (j *Journey) Status(rel string) string { return j.res[rel].String("status") }

// Resource returns the last read of rel.
func (j *Journey) Resource(rel string) Resource { return j.res[rel] }

// WaitFor polls every interval until, for every rel in want, the status of
// rel is want[rel], or ctx is done (then the error lists what differs).
func (j *Journey) WaitFor(ctx context.Context, interval time.Duration, want map[string]string) error {
	for {
		if err := j.Poll(ctx); err != nil && ctx.Err() == nil {
			return err
		}
		var diff []string
		for rel, w := range want {
			if got := j.Status(rel); got != w {
				diff = append(diff, fmt.Sprintf("%s is %q, want %q", rel, got, w))
			}
		}
		if len(diff) == 0 {
			return nil
		}
		sort.Strings(diff)
		select {
		case <-ctx.Done():
			return fmt.Errorf("order %s: %s", j.order, strings.Join(diff, "; "))
		case <-time.After(interval):
		}
	}
}

// Summary is the final line of a journey: every state it saw last.
func (j *Journey) Summary() string {
	parts := []string{"order " + j.states["order"]}
	for _, rel := range followed {
		if s := j.states[rel]; s != "" {
			parts = append(parts, rel+" "+s)
		}
	}
	return strings.Join(parts, ", ")
}
