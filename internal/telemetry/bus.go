package telemetry

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sagittarius-a/sagittarius/eventbus"
)

// busObserver is the Prometheus implementation of eventbus.Observer.
type busObserver struct {
	published *prometheus.CounterVec   // sagittarius_events_published_total{type}
	consumed  *prometheus.CounterVec   // sagittarius_events_consumed_total{type,outcome}
	duration  *prometheus.HistogramVec // sagittarius_event_handler_duration_seconds{type}
	unhandled prometheus.Counter       // consumed{type="",outcome="unhandled"}, resolved once
}

var _ eventbus.Observer = (*busObserver)(nil)

func newBusObserver() *busObserver {
	return &busObserver{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sagittarius_events_published_total",
			Help: "Events published to sagittarius-a and confirmed by the broker, by event type.",
		}, []string{"type"}),
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sagittarius_events_consumed_total",
			Help: "Deliveries settled by the service's bus, by event type and outcome: handled, duplicate (inbox), retried, dead_lettered, unhandled (a type without handler, acked unread; type is empty).",
		}, []string{"type", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sagittarius_event_handler_duration_seconds",
			Help:    "Time from dispatch to settlement of a delivery of a handled type (decoding, handler, transaction), by event type.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"type"}),
	}
}

// ForType resolves the series of one event type once.
func (o *busObserver) ForType(info eventbus.EventInfo) eventbus.TypeObserver {
	t := info.Type()
	to := &typeObserver{published: o.published.WithLabelValues(t), duration: o.duration.WithLabelValues(t)}
	for _, oc := range []eventbus.Outcome{eventbus.OutcomeHandled, eventbus.OutcomeDuplicate, eventbus.OutcomeRetried, eventbus.OutcomeDeadLettered} {
		to.consumed[oc] = o.consumed.WithLabelValues(t, oc.String())
	}
	return to
}

// Unhandled is an atomic add on a counter resolved at New.
func (o *busObserver) Unhandled() { o.unhandled.Inc() }

type typeObserver struct {
	published prometheus.Counter
	consumed  [eventbus.OutcomeDeadLettered + 1]prometheus.Counter
	duration  prometheus.Observer
}

func (o *typeObserver) Published() { o.published.Inc() }

func (o *typeObserver) Consumed(oc eventbus.Outcome, d time.Duration) {
	if int(oc) < len(o.consumed) {
		o.consumed[oc].Inc()
	}
	o.duration.Observe(d.Seconds())
}

// BusObserver returns the eventbus.Observer that feeds the event families.
func (t *T) BusObserver() eventbus.Observer { return t.bus }

// BusConfig returns cfg with the bus's Observer (metrics) and, when tracing
// is on, its TracerProvider set.
func (t *T) BusConfig(cfg eventbus.Config) eventbus.Config {
	if !t.metricsOff {
		cfg.Observer = t.bus
	}
	if t.tp != nil {
		cfg.TracerProvider = t.tp
	}
	return cfg
}

// CountDeadLetters makes sagittarius_dead_letter_messages also count the dead
// letters a keeper moved out of the queue and that are still unresolved
// (internal/failedmsg). Call it before the first scrape.
func (t *T) CountDeadLetters(unresolved func(ctx context.Context) (int, error)) {
	if t != nil {
		t.keptDeadLetters = unresolved
	}
}

// ObserveBus registers the families read from b at scrape time:
// sagittarius_broker_connected, sagittarius_broker_reconnections_total and
// sagittarius_dead_letter_messages (a passive declare of the service's
// dead-letter queue, bounded to 2 s; omitted while disconnected). Call it
// once per bus.
func (t *T) ObserveBus(b *eventbus.Bus) error {
	if t.metricsOff {
		return nil
	}
	if err := t.reg.Register(&busCollector{b: b, log: t}); err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	return nil
}

var (
	descConnected = prometheus.NewDesc("sagittarius_broker_connected",
		"1 while the bus is connected to the broker and ready to publish, else 0.", nil, nil)
	descReconnections = prometheus.NewDesc("sagittarius_broker_reconnections_total",
		"Broker connections lost and re-established since the process started.", nil, nil)
	descDeadLetters = prometheus.NewDesc("sagittarius_dead_letter_messages",
		"Dead letters of the service not dealt with: those waiting in its dead-letter queue (<service>.dead-letter) plus, where a keeper moves them to the database (CountDeadLetters), the unresolved failed messages.", nil, nil)
)

type busCollector struct {
	b   *eventbus.Bus
	log *T
}

func (c *busCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descConnected
	ch <- descReconnections
	ch <- descDeadLetters
}

func (c *busCollector) Collect(ch chan<- prometheus.Metric) {
	connected := 0.0
	if c.b.Healthy() == nil {
		connected = 1
	}
	ch <- prometheus.MustNewConstMetric(descConnected, prometheus.GaugeValue, connected)
	ch <- prometheus.MustNewConstMetric(descReconnections, prometheus.CounterValue, float64(c.b.Stats().Reconnects))
	if connected == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := c.b.DeadLetterDepth(ctx)
	if err != nil {
		c.log.log.Warn("metrics: dead-letter queue depth", "error", err)
		return
	}
	if kept := c.log.keptDeadLetters; kept != nil {
		k, err := kept(ctx)
		if err != nil {
			c.log.log.Warn("metrics: unresolved failed messages", "error", err)
			return
		}
		n += k
	}
	ch <- prometheus.MustNewConstMetric(descDeadLetters, prometheus.GaugeValue, float64(n))
}
