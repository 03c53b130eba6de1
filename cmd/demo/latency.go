package main

import (
	"math"
	"slices"
	"sync"
	"time"
)

// phase names the window a live-traffic sample belongs to. Samples taken
// outside the two measured windows (connection warm-up, plan, shutdown) are
// dropped so they cannot skew either percentile.
type phase int

const (
	phaseIgnore phase = iota
	phaseBaseline
	phaseBackfill
)

// percentile returns the p-th percentile (0 < p <= 100) of samples by the
// nearest-rank method: the smallest sample such that at least p% of all
// samples are less than or equal to it. Nearest rank always returns a latency
// that was really observed, which is what an operator reading "p95" expects;
// interpolation would invent one. ok is false when there are no samples.
// samples is not modified.
func percentile(samples []time.Duration, p float64) (d time.Duration, ok bool) {
	if len(samples) == 0 || math.IsNaN(p) || p <= 0 || p > 100 {
		return 0, false
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	// The epsilon keeps float error from pushing an exact rank one up, e.g.
	// 0.95*100 evaluating to 95.00000000000001.
	rank := int(math.Ceil(p/100*float64(len(sorted)) - 1e-9))
	rank = max(rank, 1)
	return sorted[rank-1], true
}

// latencySummary is what the demo reports for one window of live traffic.
type latencySummary struct {
	Ops      int
	Errors   int
	P50, P95 time.Duration
	P99      time.Duration
}

func summarize(samples []time.Duration, errs int) latencySummary {
	s := latencySummary{Ops: len(samples), Errors: errs}
	s.P50, _ = percentile(samples, 50)
	s.P95, _ = percentile(samples, 95)
	s.P99, _ = percentile(samples, 99)
	return s
}

// recorder collects live-traffic latencies per phase. It is safe for
// concurrent use; the zero value is not usable, call newRecorder.
type recorder struct {
	mu      sync.Mutex
	current phase
	samples map[phase][]time.Duration
	errs    map[phase]int
	lastErr error
}

func newRecorder() *recorder {
	return &recorder{
		samples: make(map[phase][]time.Duration),
		errs:    make(map[phase]int),
	}
}

func (r *recorder) setPhase(p phase) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.current = p
}

// record files one operation under the phase current at its completion.
func (r *recorder) record(d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.current == phaseIgnore {
		return
	}
	if err != nil {
		r.errs[r.current]++
		r.lastErr = err
		return
	}
	r.samples[r.current] = append(r.samples[r.current], d)
}

// count returns how many successful operations phase p has so far.
func (r *recorder) count(p phase) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.samples[p])
}

func (r *recorder) summary(p phase) latencySummary {
	r.mu.Lock()
	samples := slices.Clone(r.samples[p])
	errs := r.errs[p]
	r.mu.Unlock()
	return summarize(samples, errs)
}

func (r *recorder) lastError() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}
