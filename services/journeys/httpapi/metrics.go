package httpapi

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricStuck is the gauge of stuck journeys, by the step that overran.
const MetricStuck = "sagittarius_journeys_stuck"

// Metrics are the journeys' own Prometheus metrics.
type Metrics struct {
	stuck *prometheus.GaugeVec
}

// NewMetrics registers the journeys' metrics on reg: the gauge
// sagittarius_journeys_stuck{step}, one series per step of the definitions
// (steps), zero until the first check.
func NewMetrics(reg prometheus.Registerer, steps []string) (*Metrics, error) {
	m := &Metrics{stuck: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricStuck,
		Help: "Journeys stuck because a step overran its declared limit, by step (ops.journeys, as of its last deadline check).",
	}, []string{"step"})}
	if err := reg.Register(m.stuck); err != nil {
		return nil, err
	}
	for _, s := range steps {
		m.stuck.WithLabelValues(s).Set(0)
	}
	return m, nil
}

// SetStuck sets the gauge from counts (step -> stuck journeys).
func (m *Metrics) SetStuck(counts map[string]int) {
	for step, n := range counts {
		m.stuck.WithLabelValues(step).Set(float64(n))
	}
}

// Handler serves the metrics of g in the Prometheus text format (GET /metrics).
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}
