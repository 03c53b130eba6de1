package control

import (
	"strconv"
	"time"

	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/pause"
	"github.com/ebbhq/ebb/internal/progress"
)

// deriveStatus computes a job's status from what readStatus gathered. It is
// pure: now is the wall clock the average rate and the ETA run to (the
// guard's freshness runs on snap.redisNow instead).
func deriveStatus(snap statusSnapshot, now time.Time) *Status {
	l := snap.ledger
	s := &Status{
		Job: snap.job, Queue: l.Meta.Queue, RangesTotal: l.Meta.Ranges, RangesDone: l.RangesDone,
		RangesFailed: int64(len(l.Failed)), RowsDone: l.Rows, Batches: l.Batches, Retries: l.Retries,
		Failures: l.Failed, Created: l.Meta.Created, DryRun: l.Meta.DryRun,
	}
	if q := snap.queue; len(q.archived) > 0 || len(q.lost) > 0 {
		s.Failures = append(append([]ledger.Failure(nil), s.Failures...), q.archived...)
		s.RangesFailed += int64(len(q.archived))
		s.Lost = q.lost
	}
	s.Audit = snap.audit
	s.GuardOverride = snap.guardOverride
	s.Overrides = overridesView(snap.overrides, snap.overridesErr)
	s.Guard = guardView(snap)
	if s.Guard != nil {
		s.RowsPerSecNow = s.Guard.rowsPerSec
	}
	s.Rate, s.MaxWorkers = limitsInForce(snap.spec, s.Overrides)
	s.Auto = autoView(snap, s)
	s.PauseReason = pauseReason(snap, s)
	s.State = jobState(s, l.Alive)
	s.fillProgress(progress.OfActive(l, now, pausedWithin(snap.paused, l.Meta.Created, progressEnd(l, now))))
	if s.State == StateDone {
		// The guard has nothing left to guard: its last decision going
		// stale is no alarm.
		s.Guard = nil
	}
	s.Verify = snap.verify
	return s
}

// overridesView shows the live overrides as enqueuer set wrote them, nil
// when there are none. Unreadable overrides are shown under "error", not
// hidden: workers pause on them.
func overridesView(o ledger.Overrides, err error) map[string]string {
	out := map[string]string{}
	if err != nil {
		out["error"] = err.Error()
	}
	if o.Rate != nil {
		out[ledger.OverrideRate] = strconv.FormatFloat(*o.Rate, 'g', -1, 64)
	}
	if o.MaxWorkers != nil {
		out[ledger.OverrideMaxWorkers] = strconv.Itoa(*o.MaxWorkers)
	}
	if o.BatchMax != nil {
		out[ledger.OverrideBatchMax] = strconv.Itoa(*o.BatchMax)
	}
	if o.Sleep != nil {
		out[ledger.OverrideSleep] = o.Sleep.String()
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// guardView is the guard's decision and baseline as status shows them; nil
// for a job the guard does not watch (or whose spec is unreadable).
func guardView(snap statusSnapshot) *GuardStatus {
	if snap.spec == nil || !guard.Watched(snap.spec) {
		return nil
	}
	g := &GuardStatus{State: "none", Factor: 1}
	if snap.decision != nil {
		d, err := guard.ParseDecision(snap.decision)
		if err != nil {
			g.Reasons = []string{err.Error()}
		} else {
			g.State, g.Leader, g.At, g.Expires, g.Factor, g.Window = string(d.State), d.Leader, d.At, d.Expires, d.Factor, d.Window
			g.Reasons, g.Signals = d.Reasons, d.Signals
			g.Stale = !snap.redisNow.Before(d.Expires)
			if !g.Stale {
				g.rowsPerSec = &d.RowsPerSec
			}
		}
	} else {
		g.Stale = true
		g.Reasons = []string{"no guard decision yet: workers run the guard; none has published (are workers running?)"}
	}
	if len(snap.baseline) > 0 {
		g.Baseline = snap.baseline
	}
	return g
}

// autoView is rate: auto's state, for a rate: auto job whose rate no
// operator overrode; it sets s.Rate to the controller's rate.
func autoView(snap statusSnapshot, s *Status) *AutoStatus {
	spec := snap.spec
	if spec == nil || !spec.AutoRate || spec.Objective == nil {
		return nil
	}
	if _, ok := s.Overrides[ledger.OverrideRate]; ok {
		return nil
	}
	a := &AutoStatus{Objective: *spec.Objective, RateMax: spec.RateMax, Rate: spec.RateStart, Why: "not steered yet: starting at rate_start"}
	if snap.decision != nil {
		if d, err := guard.ParseDecision(snap.decision); err == nil && d.Auto != nil {
			a.Rate, a.Ceiling, a.Why = d.Auto.Rate, d.Auto.Ceiling, d.Auto.Why
		}
	}
	s.Rate = a.Rate
	return a
}

// limitsInForce are the job file's rate and max_workers, or a live
// override of either.
func limitsInForce(spec *jobspec.Spec, overrides map[string]string) (rate float64, maxWorkers int) {
	if spec != nil {
		rate, maxWorkers = spec.Rate, spec.MaxWorkers
	}
	if v, ok := overrides[ledger.OverrideRate]; ok {
		rate, _ = strconv.ParseFloat(v, 64)
	}
	if v, ok := overrides[ledger.OverrideMaxWorkers]; ok {
		maxWorkers, _ = strconv.Atoi(v)
	}
	return rate, maxWorkers
}

// pauseReason says what holds the job, "" when nothing does. The first
// reason wins, in the order workers check them.
func pauseReason(snap statusSnapshot, s *Status) string {
	p, g, now := snap.ledger.Pause, s.Guard, snap.redisNow
	switch {
	case s.finished():
		// Nothing can pause a job with no range left to run: a switch left
		// on, or a guard nobody runs any more, is no alarm.
	case on(p.Global):
		return pause.FlagReason(snap.globalPauseKey, p.Global)
	case on(p.Job):
		return pause.FlagReason(snap.jobPauseKey, p.Job)
	case p.QueuePaused:
		return pause.QueueReason(snap.ledger.Meta.Queue)
	case s.Overrides["error"] != "":
		return pause.OverrideReason(s.Overrides["error"])
	case s.GuardOverride != nil:
		// An operator overrides the guard: workers ignore its decision.
	case g != nil && g.State == string(guard.StatePause):
		return pause.GuardReason(g.State, g.Reasons)
	case g != nil && g.Stale && !g.Expires.IsZero() && now.Sub(g.Expires) >= guard.LeaseTTL(snap.spec.Guard.CheckEvery.D()):
		// Workers pause on their own once the decision is this old.
		return pause.NoDecisionReason(now.Sub(g.Expires))
	}
	return ""
}

// jobState is the one word status leads with.
func jobState(s *Status, alive bool) string {
	switch {
	case s.RangesDone >= s.RangesTotal:
		return StateDone
	case s.RangesFailed > 0 && s.RangesDone+s.RangesFailed >= s.RangesTotal:
		return StateFailed
	case len(s.Lost) > 0 && s.RangesDone+s.RangesFailed+int64(len(s.Lost)) >= s.RangesTotal:
		return StateLost
	case s.PauseReason != "":
		return StatePaused
	case alive:
		return StateRunning
	default:
		return StateQueued
	}
}

// finished reports whether no range is left to run: all done, or the rest
// failed.
func (s *Status) finished() bool {
	return s.RangesDone >= s.RangesTotal ||
		(s.RangesFailed > 0 && s.RangesDone+s.RangesFailed >= s.RangesTotal)
}

// fillProgress copies the progress figures, and the pace the job's rate
// would have kept over the same time.
func (s *Status) fillProgress(f progress.Figures) {
	s.EstimatedRows, s.Progress, s.ProgressBasis = f.EstimatedRows, f.Progress, f.Basis
	s.AvgRowsPerSec, s.ETASeconds = f.AvgRowsPerSec, f.ETASeconds
	if !f.Finished.IsZero() {
		finished := f.Finished
		s.Finished = &finished
	}
	s.PausedSeconds = (f.Elapsed - f.Active).Seconds()
	// rate: auto's rate moves: no fixed pace to compare with; a done job
	// has no pace left to keep.
	if active := f.Active.Seconds(); active > 0 && s.Rate > 0 && s.Auto == nil && f.Finished.IsZero() {
		s.ExpectedRows = int64(s.Rate * active)
	}
}

// progressEnd is the end of a job's life so far: its finish, or now.
func progressEnd(l ledger.Snapshot, now time.Time) time.Time {
	if !l.Meta.Finished.IsZero() && l.RangesDone >= l.Meta.Ranges {
		return l.Meta.Finished
	}
	return now
}

func on(v string) bool {
	p, _ := pause.FlagOn(v)
	return p
}
