package control

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/ledger"
)

// Status is a job's progress as status prints it.
type Status struct {
	Job          string           `json:"job"`
	Queue        string           `json:"queue"`
	State        string           `json:"state"`
	DryRun       bool             `json:"dry_run,omitempty"`
	RangesTotal  int64            `json:"ranges_total"`
	RangesDone   int64            `json:"ranges_done"`
	RangesFailed int64            `json:"ranges_failed"`
	RowsDone     int64            `json:"rows_done"`
	Batches      int64            `json:"batches"`
	Retries      int64            `json:"retries"`
	PauseReason  string           `json:"pause_reason,omitempty"`
	Failures     []ledger.Failure `json:"failures,omitempty"`
	Created      time.Time        `json:"created"`
	// Finished is when the last range was done; the average rate and pace
	// stop there instead of decaying while the finished job sits in Redis.
	Finished *time.Time `json:"finished,omitempty"`
	// EstimatedRows is the planner's count of pending rows in the job's key
	// range at the first start. Progress (0..1) is RowsDone against it
	// while it is plausible; with no estimate, or once more rows were
	// written than it predicted, or as many while ranges remain (stale
	// statistics: the estimate is plainly
	// wrong), Progress is the share of ranges done, and ProgressBasis says
	// which.
	EstimatedRows int64   `json:"estimated_rows"`
	Progress      float64 `json:"progress"`
	ProgressBasis string  `json:"progress_basis"`
	// AvgRowsPerSec is rows written over the time from the first start to
	// now, or to Finished once the job is done.
	AvgRowsPerSec float64 `json:"avg_rows_per_sec"`
	// ETASeconds is the time left, -1 when unknown: rows left at the
	// average rate on the rows basis, ranges left at the average time per
	// range so far on the ranges basis.
	ETASeconds float64 `json:"eta_seconds"`
	// ExpectedRows is what the job's rate would have written by now (0
	// without a rate): compare with RowsDone to see whether it keeps pace.
	ExpectedRows int64 `json:"expected_rows,omitempty"`
	// Rate and MaxWorkers are the limits in force: the job file's, or a
	// live override.
	Rate       float64           `json:"rate"`
	MaxWorkers int               `json:"max_workers"`
	Overrides  map[string]string `json:"overrides,omitempty"`
	Guard      *GuardStatus      `json:"guard,omitempty"`
}

// Job states.
const (
	StateQueued  = "queued"
	StateRunning = "running"
	StatePaused  = "paused"
	StateDone    = "done"
	StateFailed  = "failed"
)

// Status reads a job's progress.
func (c *Control) Status(ctx context.Context, job string) (*Status, error) {
	snap, err := c.ledger.Snapshot(ctx, job)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, fmt.Errorf("%w %q: no ledger under %s; list jobs with enqueuer status, or start it with enqueuer start -job FILE", ErrUnknownJob, job, c.ledger.MetaKey(job))
	}
	if err != nil {
		return nil, err
	}
	s := &Status{
		Job: job, Queue: snap.Meta.Queue, RangesTotal: snap.Meta.Ranges, RangesDone: snap.RangesDone,
		RangesFailed: int64(len(snap.Failed)), RowsDone: snap.Rows, Batches: snap.Batches, Retries: snap.Retries,
		Failures: snap.Failed, Created: snap.Meta.Created, DryRun: snap.Meta.DryRun,
	}
	var spec *jobspec.Spec
	if raw, err := c.ledger.Spec(ctx, job); err == nil {
		spec, _ = jobspec.FromJSON(raw)
	}
	// Freshness is judged on Redis's clock, as the workers judge it.
	now, err := c.ledger.Now(ctx)
	if err != nil {
		return nil, err
	}
	if s.Guard, s.Overrides, err = c.guardStatus(ctx, job, spec, now); err != nil {
		return nil, err
	}
	if len(s.Overrides) == 0 {
		s.Overrides = nil
	}
	if spec != nil {
		s.Rate, s.MaxWorkers = spec.Rate, spec.MaxWorkers
	}
	if v, ok := s.Overrides[ledger.OverrideRate]; ok {
		s.Rate, _ = strconv.ParseFloat(v, 64)
	}
	if v, ok := s.Overrides[ledger.OverrideMaxWorkers]; ok {
		s.MaxWorkers, _ = strconv.Atoi(v)
	}
	finished := s.RangesDone >= s.RangesTotal ||
		(s.RangesFailed > 0 && s.RangesDone+s.RangesFailed >= s.RangesTotal)
	switch {
	case finished:
		// Nothing can pause a job with no range left to run: a switch left
		// on, or a guard nobody runs any more, is no alarm.
	case on(snap.Pause.Global):
		s.PauseReason = guard.FlagReason(c.ledger.GlobalPauseKey(), snap.Pause.Global)
	case on(snap.Pause.Job):
		s.PauseReason = guard.FlagReason(c.ledger.PauseKey(job), snap.Pause.Job)
	case snap.Pause.QueuePaused:
		s.PauseReason = fmt.Sprintf("asynq queue %q is paused", snap.Meta.Queue)
	case s.Overrides["error"] != "":
		s.PauseReason = "bad live override, fix it with enqueuer set: " + s.Overrides["error"]
	case s.Guard != nil && s.Guard.State == string(guard.StatePause):
		s.PauseReason = "guard: " + strings.Join(s.Guard.Reasons, "; ")
	case s.Guard != nil && s.Guard.Stale && !s.Guard.Expires.IsZero() &&
		now.Sub(s.Guard.Expires) >= guard.LeaseTTL(spec.Guard.CheckEvery.D()):
		// Workers pause on their own once the decision is this old.
		s.PauseReason = fmt.Sprintf("guard: no fresh decision for %s (the leader is gone and no worker took over; are workers running?)",
			now.Sub(s.Guard.Expires).Round(time.Second))
	}
	switch {
	case s.RangesDone >= s.RangesTotal:
		s.State = StateDone
	case s.RangesFailed > 0 && s.RangesDone+s.RangesFailed >= s.RangesTotal:
		s.State = StateFailed
	case s.PauseReason != "":
		s.State = StatePaused
	case snap.Alive:
		s.State = StateRunning
	default:
		s.State = StateQueued
	}
	end := time.Now()
	if s.State == StateDone && !snap.Meta.Finished.IsZero() {
		f := snap.Meta.Finished
		s.Finished, end = &f, f
	}
	s.progress(snap.Meta, end)
	return s, nil
}

// Progress bases.
const (
	BasisRows   = "rows"
	BasisRanges = "ranges"
)

// progress fills the progress, average rate, ETA and expected pace.
func (s *Status) progress(m ledger.Meta, now time.Time) {
	s.EstimatedRows = m.Estimate
	s.ProgressBasis = BasisRanges
	if m.Estimate > 0 && s.RowsDone < m.Estimate {
		s.ProgressBasis = BasisRows
	}
	switch {
	case s.RangesTotal > 0 && s.RangesDone >= s.RangesTotal:
		s.Progress = 1
	case s.ProgressBasis == BasisRows:
		s.Progress = float64(s.RowsDone) / float64(m.Estimate)
	case s.RangesTotal > 0:
		s.Progress = float64(s.RangesDone) / float64(s.RangesTotal)
	}
	s.ETASeconds = -1
	elapsed := now.Sub(m.Created).Seconds()
	if elapsed > 0 {
		s.AvgRowsPerSec = float64(s.RowsDone) / elapsed
		if s.Rate > 0 {
			s.ExpectedRows = int64(s.Rate * elapsed)
		}
	}
	switch {
	case s.RangesTotal > 0 && s.RangesDone >= s.RangesTotal:
		s.ETASeconds = 0
	case s.ProgressBasis == BasisRows && s.AvgRowsPerSec > 0 && m.Estimate > s.RowsDone:
		s.ETASeconds = float64(m.Estimate-s.RowsDone) / s.AvgRowsPerSec
	case s.ProgressBasis == BasisRanges && s.RangesDone > 0 && elapsed > 0:
		s.ETASeconds = elapsed * float64(s.RangesTotal-s.RangesDone) / float64(s.RangesDone)
	}
}

func on(v string) bool {
	p, _ := guard.FlagOn(v)
	return p
}

// GuardStatus is the guard's view of a job in status.
type GuardStatus struct {
	State   string             `json:"state"`
	Stale   bool               `json:"stale,omitempty"`
	Leader  string             `json:"leader,omitempty"`
	At      time.Time          `json:"at,omitzero"`
	Expires time.Time          `json:"expires,omitzero"`
	Factor  float64            `json:"rate_factor"`
	Window  string             `json:"window,omitempty"`
	Reasons []string           `json:"reasons,omitempty"`
	Signals []guard.SignalView `json:"signals,omitempty"`
	// Baseline holds each relative rule's level before the job started.
	Baseline map[string]float64 `json:"baseline,omitempty"`
}

// guardStatus reads the decision, the baseline and the overrides.
func (c *Control) guardStatus(ctx context.Context, job string, spec *jobspec.Spec, now time.Time) (*GuardStatus, map[string]string, error) {
	o, err := c.ledger.Overrides(ctx, job)
	overrides := map[string]string{}
	if err != nil {
		// Unreadable overrides are shown, not hidden: workers pause on them.
		overrides["error"] = err.Error()
	}
	if o.Rate != nil {
		overrides[ledger.OverrideRate] = strconv.FormatFloat(*o.Rate, 'g', -1, 64)
	}
	if o.MaxWorkers != nil {
		overrides[ledger.OverrideMaxWorkers] = strconv.Itoa(*o.MaxWorkers)
	}
	if o.BatchMax != nil {
		overrides[ledger.OverrideBatchMax] = strconv.Itoa(*o.BatchMax)
	}
	if o.Sleep != nil {
		overrides[ledger.OverrideSleep] = o.Sleep.String()
	}
	if spec == nil || !guard.Watched(spec) {
		return nil, overrides, nil
	}
	g := &GuardStatus{State: "none", Factor: 1}
	raw, err := c.ledger.Decision(ctx, job)
	if err != nil {
		return nil, overrides, err
	}
	if raw != nil {
		d, err := guard.ParseDecision(raw)
		if err != nil {
			g.Reasons = []string{err.Error()}
		} else {
			g.State, g.Leader, g.At, g.Expires, g.Factor, g.Window = string(d.State), d.Leader, d.At, d.Expires, d.Factor, d.Window
			g.Reasons, g.Signals = d.Reasons, d.Signals
			g.Stale = !now.Before(d.Expires)
		}
	} else {
		g.Stale = true
		g.Reasons = []string{"no guard decision yet: workers run the guard; none has published (are workers running?)"}
	}
	if g.Baseline, err = c.ledger.Baseline(ctx, job); err != nil {
		return nil, overrides, err
	}
	if len(g.Baseline) == 0 {
		g.Baseline = nil
	}
	return g, overrides, nil
}
