package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/pause"
)

// Pause sets the pause flag of job, or of every job when job is "". The
// flag's value says who paused and when (pause.FlagValue), so status shows whom
// to ask before resuming; by is e.g. "alice@db-1 via enqueuer".
func (c *Control) Pause(ctx context.Context, job, by string) error {
	if job != "" {
		m, err := c.ledger.Meta(ctx, job)
		if errors.Is(err, ledger.ErrNotFound) {
			return fmt.Errorf("%w %q: nothing to pause", ErrUnknownJob, job)
		}
		if err != nil {
			return err
		}
		if !m.Finished.IsZero() {
			// Accepting it would say "paused" about a job with nothing
			// left to run, and leave a flag that holds back a later repair.
			return fmt.Errorf("%w: job %s finished at %s, so nothing is left to pause; enqueuer status %s shows it",
				ErrJobFinished, job, m.Finished.UTC().Format(time.RFC3339), job)
		}
	}
	if err := c.ledger.SetPause(ctx, job, pause.FlagValue(by, time.Now())); err != nil {
		return err
	}
	c.audit(ctx, job, by, ActionPause, "")
	return nil
}

// ErrJobFinished refuses an action that only makes sense while a job has
// work left.
var ErrJobFinished = errors.New("job already finished")

// Resume clears the pause flag of job, or the global one. An unknown job is
// an error: clearing an absent key would succeed, and a typo would print
// "resumed" while the real job stays paused.
func (c *Control) Resume(ctx context.Context, job, by string) error {
	if job != "" {
		if _, err := c.ledger.Meta(ctx, job); errors.Is(err, ledger.ErrNotFound) {
			return fmt.Errorf("%w %q: nothing to resume", ErrUnknownJob, job)
		}
	}
	if err := c.ledger.ClearPause(ctx, job); err != nil {
		return err
	}
	c.audit(ctx, job, by, ActionResume, "")
	return nil
}
