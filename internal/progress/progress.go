// Package progress derives a job's progress figures — ranges by state, rows
// written, the share done, the average rate and the time left — from one
// ledger snapshot. It is pure: the caller reads the snapshot (one Redis round
// trip) and passes the clock. enqueuer status, the on-call page and the
// workers' ebb_ranges, ebb_progress_ratio and ebb_eta_seconds gauges all take
// their numbers from Of, so the dashboard and the CLI never disagree. Pause
// reasons, guard state and limits are status's business (control), not this
// package's.
package progress

import (
	"time"

	"github.com/ebbhq/ebb/internal/ledger"
)

// Bases of Figures.Progress.
const (
	// BasisRows is rows written against the planner's estimate.
	BasisRows = "rows"
	// BasisRanges is the share of ranges done.
	BasisRanges = "ranges"
)

// Figures is a job's progress at one moment.
type Figures struct {
	RangesTotal  int64
	RangesDone   int64
	RangesFailed int64
	RowsDone     int64
	// EstimatedRows is the planner's count of pending rows in the job's key
	// range at the first start; 0 when it had none.
	EstimatedRows int64
	// Progress (0..1) is RowsDone against EstimatedRows while that is
	// plausible; with no estimate, or once as many rows were written as it
	// predicted while ranges remain (stale statistics: the estimate is
	// plainly wrong), it is the share of ranges done. Basis says which.
	Progress float64
	Basis    string
	// Elapsed runs from the first start to now, or to Finished once the
	// job is done, so the average rate stops there instead of decaying
	// while the finished job sits in Redis.
	Elapsed time.Duration
	// Active is Elapsed less the time the job spent paused (OfActive).
	Active time.Duration
	// AvgRowsPerSec is RowsDone over Active.
	AvgRowsPerSec float64
	// ETASeconds is the time left, -1 when unknown: rows left at the
	// average rate on the rows basis, ranges left at the average time per
	// range so far on the ranges basis, 0 once every range is done.
	ETASeconds float64
	// Finished is when the last range was done; zero while ranges remain
	// or when the ledger did not record it.
	Finished time.Time
}

// Done reports whether no range is left to run.
func (f Figures) Done() bool { return f.RangesDone >= f.RangesTotal }

// Of derives the figures of the job s describes, at now.
func Of(s ledger.Snapshot, now time.Time) Figures { return OfActive(s, now, 0) }

// OfActive is Of for a job that spent paused of its life paused: the
// average rate and the time left count only the time it could run.
// Elapsed stays the whole time.
func OfActive(s ledger.Snapshot, now time.Time, paused time.Duration) Figures {
	m := s.Meta
	f := Figures{
		RangesTotal: m.Ranges, RangesDone: s.RangesDone, RangesFailed: int64(len(s.Failed)),
		RowsDone: s.Rows, EstimatedRows: m.Estimate, Basis: BasisRanges, ETASeconds: -1,
	}
	if f.Done() && !m.Finished.IsZero() {
		f.Finished, now = m.Finished, m.Finished
	}
	if m.Estimate > 0 && f.RowsDone < m.Estimate {
		f.Basis = BasisRows
	}
	allDone := f.RangesTotal > 0 && f.Done()
	switch {
	case allDone:
		f.Progress = 1
	case f.Basis == BasisRows:
		f.Progress = float64(f.RowsDone) / float64(m.Estimate)
	case f.RangesTotal > 0:
		f.Progress = float64(f.RangesDone) / float64(f.RangesTotal)
	}
	f.Elapsed = now.Sub(m.Created)
	f.Active = max(f.Elapsed-paused, 0)
	elapsed := f.Active.Seconds()
	if elapsed > 0 {
		f.AvgRowsPerSec = float64(f.RowsDone) / elapsed
	}
	switch {
	case allDone:
		f.ETASeconds = 0
	case f.Basis == BasisRows && f.AvgRowsPerSec > 0 && m.Estimate > f.RowsDone:
		f.ETASeconds = float64(m.Estimate-f.RowsDone) / f.AvgRowsPerSec
	case f.Basis == BasisRanges && f.RangesDone > 0 && elapsed > 0:
		f.ETASeconds = elapsed * float64(f.RangesTotal-f.RangesDone) / float64(f.RangesDone)
	}
	return f
}
