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
// reports how many journeys are stuck, by step; and forgets old journeys.
type Rechecker interface {
	Recheck(ctx context.Context, now time.Time) (stuckBySteps map[string]int, err error)
	// Purge deletes up to limit journeys (with their events and ids) that
	// started before before and are neither in progress nor stuck, and
	// returns how many it deleted.
	Purge(ctx context.Context, before time.Time, limit int) (int, error)
}

// Monitor runs r.Recheck every interval until ctx is done, passing each
// count of stuck journeys to report (every step of c present, zero or not),
// and returns nil. At each tick it also purges up to 500 journeys older than
// retention (zero: never). A failed check is logged and tried again at the
// next tick: an outage of the database must not stop the service.
func Monitor(ctx context.Context, c *Catalog, r Rechecker, interval, retention time.Duration, report func(map[string]int), logger *slog.Logger) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if retention > 0 {
			if n, err := r.Purge(ctx, time.Now().Add(-retention), 500); err != nil && ctx.Err() == nil {
				logger.Warn("old journeys not purged", "error", err)
			} else if n > 0 {
				logger.Info("old journeys purged", "journeys", n, "retention", retention.String())
			}
		}
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
