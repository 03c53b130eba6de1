package runner

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ebbhq/ebb/internal/pause"
	"github.com/ebbhq/ebb/internal/rangetask"
)

// A database that cannot be reached is an outage, not a failure of the
// range that met it: a failover or a restart takes tens of seconds, and
// five quick retries used to fail every range of the job inside it. So a
// range that meets one is handed back to the queue without counting a
// failure or a retry, and comes back after a backoff that grows with the
// outage (outageBackoff), for as long as it lasts; the first batch that
// commits ends it. A database that answers but takes no writes (read-only,
// disk full) pauses the job instead: no wait fixes that, and the pause
// says why in status until an operator resumes.

// outage is one job's database outage as this worker sees it.
type outage struct {
	mu    sync.Mutex
	since time.Time
	// handedBack counts the ranges handed back during it.
	handedBack int
}

// outageBackoff bounds the wait before a range handed back in an outage
// is offered again: it doubles from outageFirst with every range handed
// back, up to outageMax, with jitter so a fleet does not come back in step.
const (
	outageFirst = time.Second
	outageMax   = 30 * time.Second
)

// outage hands a range back during a database outage.
func (r *Runner) outage(ctx context.Context, p rangetask.Payload, cause error) error {
	v, loaded := r.outages.LoadOrStore(p.Job, &outage{since: time.Now()})
	o := v.(*outage)
	o.mu.Lock()
	n := o.handedBack
	o.handedBack++
	since := o.since
	o.mu.Unlock()
	wait := min(outageFirst<<min(n, 10), outageMax)
	wait = wait/2 + rand.N(wait/2+1)
	// One warning per outage, not one per range handed back.
	level := slog.LevelDebug
	if !loaded {
		level = slog.LevelWarn
	}
	r.log.Log(ctx, level, "database unreachable: range handed back until it answers",
		slog.String("job", p.Job), slog.Int64("range", p.Range), slog.Duration("retry_in", wait),
		slog.Duration("outage_for", time.Since(since).Round(time.Second)), slog.Any("err", cause))
	return &YieldError{Reason: "database unreachable", After: wait}
}

// outageOver ends a job's outage once one of its batches commits.
func (r *Runner) outageOver(ctx context.Context, job string) {
	v, ok := r.outages.LoadAndDelete(job)
	if !ok {
		return
	}
	o := v.(*outage)
	o.mu.Lock()
	defer o.mu.Unlock()
	r.log.InfoContext(ctx, "database answers again", slog.String("job", job),
		slog.Duration("outage", time.Since(o.since).Round(time.Second)), slog.Int("ranges_handed_back", o.handedBack))
}

// pauseUnwritable pauses a job whose database takes no writes, with the
// database's message as the reason, and hands the range back.
func (r *Runner) pauseUnwritable(ctx context.Context, p rangetask.Payload, cause error) error {
	by := fmt.Sprintf("ebb worker %s because the database takes no writes (%v); fix the database, then run enqueuer resume %s", r.cfg.ID, cause, p.Job)
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.cfg.Ledger.SetPause(pctx, p.Job, pause.FlagValue(by, time.Now())); err != nil {
		r.log.ErrorContext(ctx, "could not pause a job whose database takes no writes", slog.String("job", p.Job), slog.Any("err", err))
	}
	r.log.ErrorContext(ctx, "job paused: the database takes no writes", slog.String("job", p.Job), slog.Int64("range", p.Range), slog.Any("err", cause))
	return &YieldError{Reason: "database takes no writes; job paused", After: r.cfg.PauseRecheck}
}
