package main

import (
	"context"
	"fmt"
	"time"
)

// verify runs enqueuer verify on a job that ended done; its exit code
// decides. A job that ended otherwise is not verified: it failed already.
func (d *demo) verify(ctx context.Context, r *jobRun, o outcome) error {
	if o.final.State != stateDone {
		return fmt.Errorf("job %s ended %s with %d failed ranges; see the worker logs in %s",
			r.job, o.final.State, o.final.RangesFailed, r.logDir)
	}
	if err := r.enq.show(ctx, verifyTimeout(d.cfg.rows), "verify", r.job); err != nil {
		return fmt.Errorf("verify job %s: %w", r.job, err)
	}
	return nil
}

// report prints the result: the job's numbers as status reported them,
// verify's verdict, and the live traffic's latency before and during the
// backfill. The demo checks nothing about the table itself: verify's exit
// code is the verdict.
func (d *demo) report(o outcome, verifyErr error, base latencySummary, rec *recorder) {
	d.printf("\n== result ==\n")
	d.printf("job:      %s\n", jobLine(o))
	if line := pauseLine(o); line != "" {
		d.printf("pause:    %s\n", line)
	}
	switch {
	case o.final.State != stateDone:
		d.printf("verify:   skipped, the job did not finish\n")
	case verifyErr != nil:
		d.printf("verify:   enqueuer verify found problems (report above)\n")
	default:
		d.printf("verify:   enqueuer verify passed: every row read, none pending, each holds the value the job computes\n")
	}
	during := rec.summary(phaseBackfill)
	d.printf("traffic:  baseline        %s\n", formatSummary(base))
	d.printf("          during backfill %s\n", formatSummary(during))
	if base.Ops > 0 && during.Ops > 0 && base.P95 > 0 {
		d.printf("          p95 during backfill is %.2fx the baseline\n", float64(during.P95)/float64(base.P95))
	}
	if lastErr := rec.lastError(); lastErr != nil {
		d.printf("          last traffic error: %v\n", lastErr)
	}
	d.printf("table %s in database %s is kept for inspection\n", demoTable().Sanitize(), d.cfg.dbName)
}

// jobLine summarises the final status. The rate leaves out the time the
// job wrote nothing because of the demo's pause, so it says how fast the
// fleet writes; the pause gets its own line.
func jobLine(o outcome) string {
	writing := o.elapsed - o.held - o.pickup
	rate := 0.0
	if s := writing.Seconds(); s > 0 {
		rate = float64(o.final.RowsDone) / s
	}
	return fmt.Sprintf("%s in %s: %d rows written, %.0f rows/s while writing, ranges %d/%d done, %d failed",
		o.final.State, o.elapsed.Round(100*time.Millisecond), o.final.RowsDone, rate,
		o.final.RangesDone, o.final.RangesTotal, o.final.RangesFailed)
}

// pauseLine says what the demo's pause cost, or "" when there was none.
func pauseLine(o outcome) string {
	if o.held == 0 {
		return ""
	}
	return fmt.Sprintf("held %s by enqueuer pause; rows moved again %s after enqueuer resume (workers hold paused ranges and look again every couple of seconds)",
		o.held.Round(100*time.Millisecond), o.pickup.Round(100*time.Millisecond))
}

// formatSummary renders one window's latency summary.
func formatSummary(s latencySummary) string {
	if s.Ops == 0 {
		return fmt.Sprintf("no successful ops (%d errors)", s.Errors)
	}
	return fmt.Sprintf("p50 %s  p95 %s  p99 %s  (%d ops, %d errors)",
		roundLatency(s.P50), roundLatency(s.P95), roundLatency(s.P99), s.Ops, s.Errors)
}

// roundLatency keeps three significant digits or so: sub-millisecond
// latencies to the microsecond, longer ones to 10 µs.
func roundLatency(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(10 * time.Microsecond)
}
