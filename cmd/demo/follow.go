package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// maxStatusFailures status polls failing in a row mean the enqueuer or
// Redis is gone, not a blip.
const maxStatusFailures = 10

// outcome is how the job ended, as status reported it last.
type outcome struct {
	final   jobStatus
	elapsed time.Duration // from enqueuer start to the final status
	// held and pickup are the parts of elapsed the job wrote nothing
	// because of the demo's pause (see pauser.stalled).
	held, pickup time.Duration
}

// follow polls `enqueuer status JOB --json` every second, printing a
// progress line and pausing and resuming the job once on the way, until
// the job is done or failed, the deadline passes, a worker dies or ctx
// ends.
func (d *demo) follow(ctx context.Context, r *jobRun, f *fleet, rec *recorder) (outcome, error) {
	d.printf("\nfollowing enqueuer status %s --json (every 1s, up to %s)\n", r.job, d.cfg.timeout)
	deadline := time.NewTimer(d.cfg.timeout)
	defer deadline.Stop()
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	started := time.Now()
	prog := &progress{totalRows: d.cfg.rows, start: started}
	p := &pauser{atPercent: d.cfg.pauseAt, hold: d.cfg.pauseFor}
	var o outcome
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return o, fmt.Errorf("interrupted: %w", context.Cause(ctx))
		case <-deadline.C:
			return o, fmt.Errorf("job %s not finished after %s (state %q); raise -timeout or look at the worker logs in %s",
				r.job, d.cfg.timeout, o.final.State, r.logDir)
		case <-ticker.C:
		}
		if err := f.checkAlive(); err != nil {
			return o, err
		}
		s, err := r.enq.status(ctx, r.job)
		if err != nil {
			if ctx.Err() != nil {
				return o, fmt.Errorf("interrupted: %w", context.Cause(ctx))
			}
			if failures++; failures >= maxStatusFailures {
				return o, fmt.Errorf("status of job %s failed %d times in a row: %w", r.job, failures, err)
			}
			d.log.LogAttrs(ctx, slog.LevelWarn, "status failed", slog.String("job", r.job), slog.Int("in_a_row", failures), slog.Any("err", err))
			continue
		}
		failures = 0
		now := time.Now()
		d.printf("%s\n", prog.line(now, s))
		cmd := p.next(s, percentDone(s, d.cfg.rows), now)
		o.final, o.elapsed = s, now.Sub(started)
		o.held, o.pickup = p.stalled(now)
		if s.terminal() {
			return o, nil
		}
		if err := d.steer(ctx, r, cmd, rec); err != nil {
			return o, err
		}
	}
}

// steer runs the operator command the pauser asked for, if any. Traffic
// while the job is paused says nothing about what the backfill costs it,
// so it counts in neither window.
func (d *demo) steer(ctx context.Context, r *jobRun, cmd string, rec *recorder) error {
	switch cmd {
	case cmdPause:
		rec.setPhase(phaseIgnore)
		return r.enq.show(ctx, toolTimeout, cmdPause, r.job)
	case cmdResume:
		err := r.enq.show(ctx, toolTimeout, cmdResume, r.job)
		rec.setPhase(phaseBackfill)
		return err
	}
	return nil
}

// The enqueuer commands a pauser asks for.
const (
	cmdPause  = "pause"
	cmdResume = "resume"
)

// pauser decides when the demo pauses the running job, as an operator
// would when on-call asks for room, and when it resumes it: once per run,
// when atPercent of the rows are written, for hold. It also notes when rows
// move again after the resume: a held range looks at the pause switches
// again every couple of seconds, which the demo shows rather than hides. It is pure so the
// decisions are testable without a job.
type pauser struct {
	atPercent float64 // 0 never pauses
	hold      time.Duration

	pausedAt, resumedAt, movingAt time.Time // zero until each happens
	rowsAtResume                  int64
}

// next returns cmdPause, cmdResume or "" for a status sample s taken at
// now, with pct percent of the job done.
func (p *pauser) next(s jobStatus, pct float64, now time.Time) string {
	switch {
	case p.atPercent <= 0:
		return ""
	case p.pausedAt.IsZero():
		if s.State == stateRunning && pct >= p.atPercent {
			p.pausedAt = now
			return cmdPause
		}
	case p.resumedAt.IsZero():
		if now.Sub(p.pausedAt) >= p.hold {
			p.resumedAt, p.rowsAtResume = now, s.RowsDone
			return cmdResume
		}
	case p.movingAt.IsZero() && s.RowsDone > p.rowsAtResume:
		p.movingAt = now
	}
	return ""
}

// stalled returns how long the job had written nothing up to now because
// of the demo's pause: held, from pause to resume, and pickup, from resume
// until rows moved again.
func (p *pauser) stalled(now time.Time) (held, pickup time.Duration) {
	switch {
	case p.pausedAt.IsZero():
		return 0, 0
	case p.resumedAt.IsZero():
		return now.Sub(p.pausedAt), 0
	case p.movingAt.IsZero():
		return p.resumedAt.Sub(p.pausedAt), now.Sub(p.resumedAt)
	}
	return p.resumedAt.Sub(p.pausedAt), p.movingAt.Sub(p.resumedAt)
}
