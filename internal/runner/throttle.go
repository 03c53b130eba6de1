package runner

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ebbhq/ebb/internal/clock"
	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/ledger"
)

// limitPoll bounds how long a batch waits for the rate limit or a slot
// before it looks at the pause keys and the guard again.
const limitPoll = time.Second

// recheckAfter is how long a batch waits for the rate limit before it
// looks at the pause keys and the guard again: the gate before every batch
// looks anyway, so only a long wait needs to.
const recheckAfter = 250 * time.Millisecond

// throttle waits until the fleet may write n rows of job: the fleet-wide
// rate limit (GCRA in Redis, cost = rows) and then a concurrency slot. It
// returns a release func for the slot. recheck is called between waits and
// returns the current limits, or an error (pause, drain, lease lost) that
// ends the wait.
func (r *Runner) throttle(ctx context.Context, spec *jobspec.Spec, slot string, n int, lim guard.Limits, recheck func() (guard.Limits, error)) (func(), error) {
	began := time.Now()
	defer func() {
		if m := r.cfg.Metrics; m != nil {
			if w := time.Since(began); w > time.Millisecond {
				m.RateWait.WithLabelValues(spec.Name).Add(w.Seconds())
			}
		}
	}()
	lim, err := r.waitRate(ctx, spec, n, lim, recheck)
	if err != nil {
		return nil, err
	}
	return r.takeSlot(ctx, spec.Name, slot, lim, recheck)
}

// waitRate takes n rows from the fleet's budget, waiting while it is spent.
// It returns the limits as of its last recheck, or errRecut when they
// shrank under n while it waited.
func (r *Runner) waitRate(ctx context.Context, spec *jobspec.Spec, n int, lim guard.Limits, recheck func() (guard.Limits, error)) (guard.Limits, error) {
	if lim.Rate <= 0 {
		return lim, nil
	}
	// One goroutine of this worker asks the limiter at a time. They would
	// wake together after the same retryAfter, and all but one be turned
	// away again: each such turn is a script of several commands, and a
	// rate-limited batch paid five of them before this queue.
	release, err := r.rateTurn(ctx, spec.Name)
	if err != nil {
		return lim, err
	}
	defer release()
	checked := time.Now()
	for lim.Rate > 0 {
		// The burst always fits n: redis_rate never grants a cost above it.
		ok, retryAfter, err := r.cfg.Ledger.AllowN(ctx, spec.Name, ledger.RateLimit{RowsPerSec: lim.Rate, Burst: max(n, burst(spec, lim))}, n)
		if err != nil {
			return lim, err
		}
		if ok {
			break
		}
		if err := clock.Sleep(ctx, min(retryAfter, limitPoll)); err != nil {
			return lim, err
		}
		if time.Since(checked) < recheckAfter {
			// A short wait for the budget: the batch runs next, and the
			// gate before the batch after it sees any pause. Reading the
			// pause keys after every short wait cost a rate-limited
			// batch more Redis commands than its checkpoint.
			continue
		}
		checked = time.Now()
		if lim, err = recheck(); err != nil {
			return lim, err
		}
		if n > rateCap(lim.Rate) || (lim.BatchMax > 0 && n > lim.BatchMax) {
			// Slowed while waiting: a batch cut for the old limits may
			// now be too big to ever fit the budget.
			return lim, errRecut
		}
	}
	return lim, nil
}

// rateTurn waits for this worker's turn at job's rate limit and returns
// the func that passes it on.
func (r *Runner) rateTurn(ctx context.Context, job string) (func(), error) {
	v, _ := r.rateTurns.LoadOrStore(job, make(chan struct{}, 1))
	turn := v.(chan struct{})
	select {
	case turn <- struct{}{}:
		return func() { <-turn }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// takeSlot waits for one of the job's max_workers slots, when it has a
// cap, and returns the func that gives the slot back.
func (r *Runner) takeSlot(ctx context.Context, job, slot string, lim guard.Limits, recheck func() (guard.Limits, error)) (func(), error) {
	for lim.MaxWorkers > 0 {
		ok, err := r.cfg.Ledger.AcquireSlot(ctx, job, slot, lim.MaxWorkers, r.cfg.SlotLease)
		if err != nil {
			return nil, err
		}
		if ok {
			stop := r.keepSlot(ctx, job, slot, lim.MaxWorkers)
			return func() {
				stop()
				r.releaseSlot(ctx, job, slot)
			}, nil
		}
		// Jittered, so waiting workers do not ask in lockstep.
		if err := clock.Sleep(ctx, 20*time.Millisecond+rand.N(80*time.Millisecond)); err != nil {
			return nil, err
		}
		if lim, err = recheck(); err != nil {
			return nil, err
		}
	}
	return func() {}, nil
}

// releaseSlot gives a batch's slot back. It runs even when ctx is done, or
// the slot would idle until its lease ran out.
func (r *Runner) releaseSlot(ctx context.Context, job, slot string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := r.cfg.Ledger.ReleaseSlot(rctx, job, slot); err != nil {
		r.log.WarnContext(ctx, "could not release batch slot (it expires by itself)", "job", job, "err", err)
	}
}

// errRecut asks the caller to cut the batch again under new limits.
var errRecut = errors.New("limits changed; cut the batch again")

// keepSlot renews the batch's slot every third of its lease until stop is
// called. The lease can then be short, so a dead worker's slot frees within
// seconds, and still never run out under a batch that takes longer than it
// (a slow COMMIT, a long statement_timeout).
func (r *Runner) keepSlot(ctx context.Context, job, slot string, limit int) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		every := r.cfg.SlotLease / 3
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			// Not tied to ctx: the batch in flight finishes after a pause
			// or a lost lease, and keeps its slot while it does.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), every)
			ok, err := r.cfg.Ledger.AcquireSlot(rctx, job, slot, limit, r.cfg.SlotLease)
			cancel()
			if err != nil || !ok {
				r.log.WarnContext(ctx, "could not renew batch slot; max_workers may be exceeded until this batch ends",
					"job", job, "slot", slot, "err", err)
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// burst is the GCRA burst: the largest batch the job may cut, so any batch
// fits and the fleet can run ahead of the rate by at most one batch.
func burst(spec *jobspec.Spec, lim guard.Limits) int {
	b := spec.Batch.Max
	if lim.BatchMax > 0 {
		b = min(b, lim.BatchMax)
	}
	return max(1, min(b, rateCap(lim.Rate)))
}

// rateCap is the most rows one batch may take under rate: a second's worth,
// so no batch waits long for its budget.
func rateCap(rate float64) int {
	if rate <= 0 {
		return math.MaxInt
	}
	return max(1, int(rate))
}
