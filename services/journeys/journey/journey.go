package journey

import (
	"context"
	"log/slog"
	"time"
)

// Journey is one journey as stored: its derived status and what its events
// told about it.
type Journey struct {
	ID string // the correlation id
	Status
	StartedAt  time.Time           // fired_at of its first event
	UpdatedAt  time.Time           // fired_at of its last event
	EventCount int                 // events recorded
	TraceID    string              // trace id of its first traced event
	IDs        map[string][]string // business ids by kind (order_id …), sorted
	Links      map[string]string   // relation -> path under the public base URL
	Publishers []string            // the services that published its events, sorted
	Version    int64
	Events     []Event // its timeline, in order (only from Store.Get)
}

// Received is an event as the journeys service receives it.
type Received struct {
	Event
	CorrelationID string
	Entity        []byte // the raw entity (JSON object), nil when the payload has none
}

// Filter selects journeys for Store.List. Empty fields do not filter.
type Filter struct {
	State      string
	OrderID    string
	CustomerID string
	Limit      int
	Offset     int
}

// Store keeps journeys. Implementations are safe for concurrent use.
type Store interface {
	// Get returns the journey id with its timeline, or ErrNotFound.
	Get(ctx context.Context, id string) (Journey, error)
	// List returns a page of the journeys matching f, most recently started
	// first, and how many match in all.
	List(ctx context.Context, f Filter) ([]Journey, int, error)
}

// Rechecker re-derives the journeys whose next deadline has passed and
// reports how many journeys are stuck, by step.
type Rechecker interface {
	Recheck(ctx context.Context, now time.Time) (stuckBySteps map[string]int, err error)
}

// Monitor runs r.Recheck every interval until ctx is done, passing each
// count of stuck journeys to report (every step of c present, zero or not),
// and returns nil. A failed check is logged and tried again at the next
// tick: an outage of the database must not stop the service.
func Monitor(ctx context.Context, c *Catalog, r Rechecker, interval time.Duration, report func(map[string]int), logger *slog.Logger) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		counts, err := r.Recheck(ctx, time.Now())
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			logger.Warn("journey deadlines not checked", "error", err)
		} else {
			all := make(map[string]int, len(c.Steps))
			for _, s := range c.StepNames() {
				all[s] = counts[s]
			}
			report(all)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
