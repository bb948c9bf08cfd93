// Command journeys runs ops.journeys: it consumes every event on
// sagittarius-a and keeps the journey of each business transaction (every
// event of one correlation id, in order, with what it waits for next,
// declared in journey/journeys.yaml), serves them through its HAL API, marks
// a journey stuck when a step overruns and exports sagittarius_journeys_stuck.
//
// Its own settings: JOURNEY_STEP_LIMITS ("payment=2s,*=30s": override the
// declared limits), JOURNEY_CHECK_INTERVAL (how often deadlines are checked;
// default 5s), JOURNEY_RETENTION (journeys that started longer ago and are
// neither in progress nor stuck are deleted; default 720h), TRACE_UI_URL (a
// trace UI URL template with {trace_id}, for the journeys' trace links). The rest is the service kit's (internal/service).
package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sagittarius-a/sagittarius/internal/service"
	"github.com/sagittarius-a/sagittarius/services/journeys/eventapi"
	"github.com/sagittarius-a/sagittarius/services/journeys/httpapi"
	"github.com/sagittarius-a/sagittarius/services/journeys/journey"
	"github.com/sagittarius-a/sagittarius/services/journeys/journeyevents"
	"github.com/sagittarius-a/sagittarius/services/journeys/mysql"
)

func main() { service.Main(run) }

// run serves ops.journeys until ctx is done (see service.Run).
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	catalog, interval, retention, err := settings(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	spec := service.Spec{Dir: "journeys", Name: journeyevents.Service, Addr: "127.0.0.1:8089",
		Migrations: mysql.Migrations, Publishes: journeyevents.All}
	return service.Run(ctx, getenv, stdout, spec, func(p *service.Process) (service.API, error) {
		render := httpapi.NewRenderer(p.Base, catalog, getenv("TRACE_UI_URL"))
		store, err := mysql.NewStore(p.DB, catalog, render.Summary, p.Relay.Notify)
		if err != nil {
			return nil, err
		}
		if err := eventapi.New(store, p.Logger).Register(p.Bus, p.DB); err != nil {
			return nil, err
		}
		// The stuck gauge joins the kit's /metrics (none when printing contracts).
		var reg prometheus.Registerer = prometheus.NewRegistry()
		if p.Telemetry != nil {
			reg = p.Telemetry.Registerer()
		}
		metrics, err := httpapi.NewMetrics(reg, catalog.StepNames())
		if err != nil {
			return nil, err
		}
		p.Go("deadlines", func(ctx context.Context) error {
			return journey.Monitor(ctx, catalog, store, interval, retention, metrics.SetStuck, p.Logger)
		})
		return httpapi.New(store, render, p.Logger), nil
	})
}

// settings reads the journeys' own settings (see the package comment).
func settings(getenv func(string) string) (catalog *journey.Catalog, interval, retention time.Duration, err error) {
	if catalog, err = journey.Default(); err != nil {
		return nil, 0, 0, err
	}
	if catalog, err = catalog.WithLimits(getenv("JOURNEY_STEP_LIMITS")); err != nil {
		return nil, 0, 0, fmt.Errorf("JOURNEY_STEP_LIMITS: %w", err)
	}
	durations := []struct {
		name string
		dst  *time.Duration
		def  time.Duration
	}{{"JOURNEY_CHECK_INTERVAL", &interval, 5 * time.Second}, {"JOURNEY_RETENTION", &retention, 30 * 24 * time.Hour}}
	for _, d := range durations {
		*d.dst = d.def
		if v := getenv(d.name); v != "" {
			if *d.dst, err = time.ParseDuration(v); err != nil || *d.dst <= 0 {
				return nil, 0, 0, fmt.Errorf("%s %q: want a positive duration such as 5s or 720h", d.name, v)
			}
		}
	}
	return catalog, interval, retention, nil
}
