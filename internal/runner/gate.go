package runner

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/ebbhq/ebb/internal/clock"
	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/metrics"
	"github.com/ebbhq/ebb/internal/pause"
	"github.com/ebbhq/ebb/internal/rangetask"
)

// The gate between batches: pause switches, drain, the guard's decision and
// the live overrides become the limits of the next batch, or a yield. The
// fleet's rate and slots, which a batch waits for after the gate, are in
// throttle.go.

// limits returns what the next batch may do, or a yield when the job is
// paused (a pause key, asynq's queue pause, the guard) or the worker drains,
// and the context's error when the lease is gone. It runs between batches
// only, so a pause never cuts a transaction in half.
func (r *Runner) limits(ctx context.Context, queue, run string, spec *jobspec.Spec, p rangetask.Payload) (guard.Limits, error) {
	if err := ctx.Err(); err != nil {
		return guard.Limits{}, err
	}
	if r.cfg.Draining() {
		return guard.Limits{}, &YieldError{Reason: "worker shutting down", After: time.Second}
	}
	c, err := r.controls.get(ctx, r.cfg.Ledger, p.Job, queue)
	if err != nil {
		return guard.Limits{}, err
	}
	if err := r.sameRun(ctx, p, run, c); err != nil {
		return guard.Limits{}, err
	}
	held := r.pauser.Judge(ctx, p.Job, queue, c.Pause)
	if !held.Paused && c.BadOverrides != nil {
		// A typo in a live override must not run the job at a limit
		// nobody asked for, nor burn its ranges' retries: pause until fixed.
		held.Paused, held.Reason = true, pause.OverrideReason(c.BadOverrides.Error())
	}
	if held.Paused {
		r.setPaused(p.Job, true)
		r.transition(ctx, p.Job, held.Reason)
		return guard.Limits{}, &YieldError{Reason: held.Reason, After: r.cfg.PauseRecheck}
	}
	lim, err := r.follow(ctx, spec, p, queue, c)
	if err != nil {
		return guard.Limits{}, err
	}
	r.setPaused(p.Job, lim.Paused)
	r.setGuardState(p.Job, guardGauge(lim))
	if lim.Paused {
		r.transition(ctx, p.Job, lim.Reason)
		return lim, &YieldError{Reason: lim.Reason, After: r.cfg.PauseRecheck}
	}
	r.transition(ctx, p.Job, "")
	return lim, nil
}

// sameRun fails closed when the job's ledger is gone from Redis (Redis
// lost its data, or the job was cleaned up): the walker stops writing,
// instead of committing batches whose checkpoints would rebuild half a
// ledger nobody reads, and the task is archived. A job started again from
// scratch since this range began (another run) hands the range back: it
// comes back under the new run's spec and cursor.
func (r *Runner) sameRun(ctx context.Context, p rangetask.Payload, run string, c ledger.Controls) error {
	switch {
	case c.Gone:
		r.log.ErrorContext(ctx, "job's ledger is gone from Redis: range stopped, nothing more is written",
			slog.String("job", p.Job), slog.Int64("range", p.Range),
			slog.String("hint", "Redis lost its data or the job was cleaned up; run enqueuer start -job FILE to start it again: done rows are skipped by its pending predicate"))
		return fmt.Errorf("job %s has no meta in Redis any more (lost with Redis's data, or cleaned up): stopped writing; run enqueuer start -job FILE again: %w", p.Job, asynq.SkipRetry)
	case c.Run != run:
		return &YieldError{Reason: "job started again as a new run", After: time.Second}
	}
	return nil
}

// transition logs when this worker first sees job paused (with the reason)
// or running again.
func (r *Runner) transition(ctx context.Context, job, reason string) {
	prev, _ := r.paused.Swap(job, reason)
	switch was, _ := prev.(string); {
	case reason != "" && was == "":
		r.log.InfoContext(ctx, "job paused", slog.String("job", job), slog.String("reason", reason))
	case reason == "" && was != "":
		r.log.InfoContext(ctx, "job resumed", slog.String("job", job), slog.String("was", was))
	}
}

// follow reads the guard's decision and the overrides. A job the guard has
// not looked at yet waits here for its first decision (a leader publishes
// within a check) rather than bouncing the range through the queue.
func (r *Runner) follow(ctx context.Context, spec *jobspec.Spec, p rangetask.Payload, queue string, c ledger.Controls) (guard.Limits, error) {
	deadline := time.Now().Add(guard.LeaseTTL(spec.Guard.CheckEvery.D()))
	for {
		lim := r.follower.Limits(spec, c, c.Now)
		if !lim.Waiting || time.Now().After(deadline) || r.cfg.Draining() {
			return lim, nil
		}
		if err := clock.Sleep(ctx, 100*time.Millisecond); err != nil {
			return guard.Limits{}, err
		}
		var err error
		if c, err = r.controls.fresh(ctx, r.cfg.Ledger, p.Job, queue); err != nil {
			return guard.Limits{}, err
		}
	}
}

// setPaused sets ebb_paused of job. A pause switch leaves ebb_guard_state
// as it was: the guard was not asked.
func (r *Runner) setPaused(job string, paused bool) {
	if m := r.cfg.Metrics; m != nil {
		v := 0.0
		if paused {
			v = 1
		}
		m.Paused.WithLabelValues(job).Set(v)
	}
}

// setGuardState sets ebb_guard_state of job to one of metrics.GuardState*.
func (r *Runner) setGuardState(job string, value float64) {
	if m := r.cfg.Metrics; m != nil {
		m.GuardState.WithLabelValues(job).Set(value)
	}
}

// guardState is the guard's state that lim carries out: pause (the
// guard's, or the wait for its first decision), slow while the guard gives
// a reason, else run.
func guardState(lim guard.Limits) guard.State {
	switch {
	case lim.Paused:
		return guard.StatePause
	case lim.Reason != "":
		return guard.StateSlow
	}
	return guard.StateRun
}

// guardGauge is the ebb_guard_state value of lim. Stale comes first: a
// worker without a fresh decision runs at the minimum, then pauses,
// whatever the last decision said.
func guardGauge(lim guard.Limits) float64 {
	if lim.Stale {
		return metrics.GuardStateStale
	}
	switch guardState(lim) {
	case guard.StatePause:
		return metrics.GuardStatePause
	case guard.StateSlow:
		return metrics.GuardStateSlow
	}
	return metrics.GuardStateRun
}
