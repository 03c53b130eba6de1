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
	switch {
	case o.final.State != stateDone:
		d.printf("verify:   skipped, the job did not finish\n")
	case verifyErr != nil:
		d.printf("verify:   enqueuer verify found problems (report above)\n")
	default:
		d.printf("verify:   enqueuer verify passed: no row pending, sampled rows hold the value the job computes\n")
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
// demo held the job paused, so it says how fast the fleet writes.
func jobLine(o outcome) string {
	running := o.elapsed - o.paused
	rate := 0.0
	if s := running.Seconds(); s > 0 {
		rate = float64(o.final.RowsDone) / s
	}
	paused := ""
	if o.paused > 0 {
		paused = fmt.Sprintf(" (%s of it paused)", o.paused.Round(100*time.Millisecond))
	}
	return fmt.Sprintf("%s in %s%s: %d rows written, %.0f rows/s while running, ranges %d/%d done, %d failed",
		o.final.State, o.elapsed.Round(100*time.Millisecond), paused, o.final.RowsDone, rate,
		o.final.RangesDone, o.final.RangesTotal, o.final.RangesFailed)
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
