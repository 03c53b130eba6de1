package runner

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ebbhq/ebb/internal/clock"
)

// A range dequeued, or running, while its job is paused is held where it
// is (its task stays active in asynq, the rest of the job's tasks stay
// pending) instead of being handed back: handed back, every range of a
// long pause went through asynq's retry set, and Asynqmon showed a paused
// job as a column of failing retries with "Last Error: range handed
// back". A worker slot holding a paused range does nothing else, so a
// range is held only while no other unfinished job is served by the same
// queue; otherwise it is handed back as before, and the other jobs get the
// slot. A drain, the task's deadline or holdMax end a hold.

// holdMax bounds one hold; the range is then handed back and comes again.
const holdMax = time.Hour

// queueShared caches, per queue, whether another unfinished job uses it.
type queueShared struct {
	mu     sync.Mutex
	checks map[string]sharedCheck
}

type sharedCheck struct {
	at     time.Time
	shared bool
}

// sharedFor is how long one answer serves.
const sharedFor = 10 * time.Second

// hold waits while the gate says the job is paused, as long as holding is
// fair to other jobs; it returns the gate's last error (nil once the job
// may run again), or pauseErr unchanged when the range must be handed
// back instead.
func (w *walker) hold(ctx context.Context, pauseErr error) error {
	var y *YieldError
	if !errors.As(pauseErr, &y) || w.r.cfg.Draining() {
		return pauseErr
	}
	if w.r.queueShared(ctx, w.queue, w.p.Job) {
		return pauseErr
	}
	deadline := time.Now().Add(holdMax)
	if d, ok := ctx.Deadline(); ok && d.Add(-time.Minute).Before(deadline) {
		deadline = d.Add(-time.Minute)
	}
	w.r.log.DebugContext(ctx, "range held while its job is paused", append(w.attrs, slog.String("reason", y.Reason))...)
	for {
		if time.Now().After(deadline) {
			return pauseErr
		}
		if err := clock.Sleep(ctx, w.r.cfg.PauseRecheck); err != nil {
			return err
		}
		err := w.gate(ctx)
		if err == nil || !errors.As(err, &y) || w.r.cfg.Draining() {
			return err
		}
		pauseErr = err
	}
}

// queueShared reports whether another unfinished job than job uses queue;
// an error reading it counts as shared (hand back: the safe old way).
func (r *Runner) queueShared(ctx context.Context, queue, job string) bool {
	r.shared.mu.Lock()
	if c, ok := r.shared.checks[queue+"\x00"+job]; ok && time.Since(c.at) < sharedFor {
		r.shared.mu.Unlock()
		return c.shared
	}
	r.shared.mu.Unlock()
	shared := true
	if jobs, err := r.cfg.Ledger.Jobs(ctx); err == nil {
		shared = false
		for _, other := range jobs {
			if other == job {
				continue
			}
			m, err := r.cfg.Ledger.Meta(ctx, other)
			if err != nil {
				continue // cleaned up meanwhile
			}
			if m.Queue == queue && m.Finished.IsZero() {
				shared = true
				break
			}
		}
	}
	r.shared.mu.Lock()
	if r.shared.checks == nil {
		r.shared.checks = map[string]sharedCheck{}
	}
	r.shared.checks[queue+"\x00"+job] = sharedCheck{at: time.Now(), shared: shared}
	r.shared.mu.Unlock()
	return shared
}
