// Package metrics owns every ebb_* Prometheus collector. Collectors are
// registered on a registry the caller passes in, never the global default.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the worker's collectors, all labelled by job.
type Metrics struct {
	Rows          *prometheus.CounterVec
	Batches       *prometheus.CounterVec
	BatchDuration *prometheus.HistogramVec
	BatchSize     *prometheus.GaugeVec
	Paused        *prometheus.GaugeVec
	RateWait      *prometheus.CounterVec
	GuardState    *prometheus.GaugeVec
	GuardSignal   *prometheus.GaugeVec
}

// New creates the collectors and registers them on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_rows_total", Help: "Rows changed by committed write batches.",
		}, []string{"job"}),
		Batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_batches_total", Help: "Write batches by outcome (committed, retried, failed).",
		}, []string{"job", "outcome"}),
		BatchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ebb_batch_duration_seconds",
			Help:    "Time from BEGIN to COMMIT of one write batch.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"job"}),
		BatchSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_batch_size", Help: "Keys in the last write batch.",
		}, []string{"job"}),
		Paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_paused", Help: "1 while this worker saw the job paused at its last check.",
		}, []string{"job"}),
		RateWait: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_rate_limit_wait_seconds", Help: "Time batches waited for the fleet-wide rate limit or a concurrency slot.",
		}, []string{"job"}),
		GuardState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_guard_state", Help: "The guard decision this worker follows: 0 run, 1 slow, 2 pause, 3 stale (no fresh decision).",
		}, []string{"job"}),
		GuardSignal: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_guard_signal", Help: "Last value of each guard rule's signal, set by the worker that leads the guard.",
		}, []string{"job", "signal"}),
	}
	for _, c := range []prometheus.Collector{m.Rows, m.Batches, m.BatchDuration, m.BatchSize, m.Paused, m.RateWait, m.GuardState, m.GuardSignal} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
