// Package metrics owns every ebb_* Prometheus collector. Collectors are
// registered on a registry the caller passes in, never the global default.
//
// Two kinds live here: the instruments the runner and the guard update as
// they work (Metrics), and collectors that read shared state from Redis at
// scrape time (ProgressCollector for ranges, progress and ETA, and
// QueueCollector for asynq's queues). The scrape-time collectors never fail
// a scrape: what they cannot read in time is left out and logged at debug.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"runtime"
	"runtime/debug"
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
	// GuardThreshold holds each rule's limits next to GuardSignal, so a
	// dashboard can draw the line a signal must cross. Relative limits
	// (1.2x) are exported resolved against the baseline.
	GuardThreshold *prometheus.GaugeVec
	// GuardChanges counts the guard leader's changes of state or rate
	// factor, by the state changed to: each is also kept in the job's
	// decision history (enqueuer status JOB --history).
	GuardChanges *prometheus.CounterVec
	// AutoRate is the fleet rate rate: auto's controller set, on the
	// worker that leads the guard.
	AutoRate *prometheus.GaugeVec
	// BatchErrors counts failed batch reads and writes by why they failed.
	BatchErrors *prometheus.CounterVec
}

// Threshold kinds of ebb_guard_threshold, one per limit of a guard rule.
const (
	ThresholdSlow  = "slow"
	ThresholdPause = "pause"
	ThresholdClear = "clear"
)

// Values of ebb_guard_state: the guard state a worker follows (run, slow,
// pause), and stale when it has no fresh decision to follow. Dashboards and
// alerts compare against these numbers, so they never change.
const (
	GuardStateRun   = 0.0
	GuardStateSlow  = 1.0
	GuardStatePause = 2.0
	GuardStateStale = 3.0
)

// Values of ebb_batches_total's outcome label. Dashboards and alerts select
// on them, so they never change.
const (
	OutcomeCommitted  = "committed"
	OutcomeRetried    = "retried"
	OutcomeFailed     = "failed"
	OutcomeRolledBack = "rolled_back"
	// OutcomeFenced is a batch refused because a newer worker claimed its
	// range (runner's fencing).
	OutcomeFenced = "fenced"
)

// New creates the collectors and registers them on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_rows_total", Help: "Rows changed by committed write batches.",
		}, []string{"backfill"}),
		Batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_batches_total", Help: "Batches by outcome (committed; retried and failed, for a batch's read or write; rolled_back in a dry run).",
		}, []string{"backfill", "outcome"}),
		BatchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ebb_batch_duration_seconds",
			Help:    "Time from BEGIN to COMMIT of one write batch.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"backfill"}),
		BatchSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_batch_size", Help: "Keys in the last write batch.",
		}, []string{"backfill"}),
		Paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_paused", Help: "1 while this worker saw the job paused at its last check.",
		}, []string{"backfill"}),
		RateWait: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_rate_limit_wait_seconds_total", Help: "Time batches waited for the fleet-wide rate limit or a concurrency slot.",
		}, []string{"backfill"}),
		GuardState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_guard_state", Help: "The guard decision this worker follows: 0 run, 1 slow, 2 pause, 3 stale (no fresh decision).",
		}, []string{"backfill"}),
		GuardSignal: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_guard_signal", Help: "Last value of each guard rule's signal, set by the worker that leads the guard.",
		}, []string{"backfill", "signal"}),
		GuardThreshold: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_guard_threshold", Help: "Limits of each guard rule (kind slow, pause or clear), set by the worker that leads the guard.",
		}, []string{"backfill", "signal", "kind"}),
		GuardChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_guard_changes_total", Help: "Changes of the guard's state or rate factor made by the worker that leads the guard, by the state changed to.",
		}, []string{"backfill", "state"}),
		BatchErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_batch_errors_total", Help: "Failed batch reads and writes by reason (batch.Reason: deadlock, lock_timeout, statement_timeout, serialization, connection, unwritable, fenced, other).",
		}, []string{"backfill", "reason"}),
		AutoRate: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_auto_rate_rows_per_second", Help: "The fleet rate (rows/s) that rate: auto's controller set at its last check, exported by the worker that leads the guard.",
		}, []string{"backfill"}),
	}
	if err := reg.Register(buildInfo()); err != nil {
		return nil, err
	}
	for _, c := range []prometheus.Collector{m.Rows, m.Batches, m.BatchDuration, m.BatchSize, m.Paused, m.RateWait, m.GuardState, m.GuardSignal, m.GuardThreshold, m.GuardChanges, m.AutoRate, m.BatchErrors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// buildInfo is ebb_build_info: 1, labelled with the module's version, the
// VCS revision it was built from ("unknown" when the build did not stamp
// one) and the Go version, so a dashboard can tell which build each
// worker runs.
func buildInfo() prometheus.Collector {
	version, revision := "(devel)", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "ebb_build_info",
		Help:        "1, labelled with the build of this worker: version, VCS revision and Go version.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "go": runtime.Version()},
	})
	g.Set(1)
	return g
}
