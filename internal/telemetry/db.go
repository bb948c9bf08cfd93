package telemetry

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// InstrumentDB registers the database families of the service's database
// db, named name (its dir, e.g. "orders"): the pool statistics of
// database/sql (go_sql_* with db_name=name: open, in use and idle
// connections, waits and their duration, connections closed by limit) and
// the outbox gauges sagittarius_outbox_pending and
// sagittarius_outbox_oldest_age_seconds, read at scrape with one indexed
// query on eventbus_outbox (bounded to 2 s; omitted when it fails). Call it
// once per database.
func (t *T) InstrumentDB(db *sqlx.DB, name string) error {
	if t.metricsOff {
		return nil
	}
	if err := t.reg.Register(collectors.NewDBStatsCollector(db.DB, name)); err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	if err := t.reg.Register(&outboxCollector{db: db, t: t}); err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	return nil
}

var (
	descOutboxPending = prometheus.NewDesc("sagittarius_outbox_pending",
		"Events written to the outbox and not yet confirmed by the broker.", nil, nil)
	descOutboxAge = prometheus.NewDesc("sagittarius_outbox_oldest_age_seconds",
		"Age of the oldest event not yet published (0 when none is pending): grows when the relay stops draining.", nil, nil)
)

type outboxCollector struct {
	db *sqlx.DB
	t  *T
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descOutboxPending
	ch <- descOutboxAge
}

// Collect counts pending rows with the pending index (sent_at, …): the scan
// covers only the rows not yet sent.
func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var row struct {
		N      int          `db:"n"`
		Oldest sql.NullTime `db:"oldest"`
	}
	if err := c.db.GetContext(ctx, &row,
		`SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM eventbus_outbox WHERE sent_at IS NULL`); err != nil {
		c.t.log.Warn("metrics: outbox", "error", err)
		return
	}
	age := 0.0
	if row.Oldest.Valid {
		age = max(0, time.Since(row.Oldest.Time).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(descOutboxPending, prometheus.GaugeValue, float64(row.N))
	ch <- prometheus.MustNewConstMetric(descOutboxAge, prometheus.GaugeValue, age)
}
