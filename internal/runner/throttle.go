package runner

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"

	"github.com/ebbhq/ebb/internal/clock"
	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/jobspec"
)

// limitPoll bounds how long a batch waits for the rate limit or a slot
// before it looks at the pause keys and the guard again.
const limitPoll = time.Second

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
	l := r.cfg.Ledger
	for lim.Rate > 0 {
		// The burst always fits n: redis_rate never grants a cost above it.
		res, err := r.limiter.AllowN(ctx, l.RateKey(spec.Name), rateLimit(lim.Rate, max(n, burst(spec, lim))), n)
		if err != nil {
			return nil, err
		}
		if res.Allowed > 0 {
			break
		}
		if err := clock.Sleep(ctx, min(res.RetryAfter, limitPoll)); err != nil {
			return nil, err
		}
		if lim, err = recheck(); err != nil {
			return nil, err
		}
		if n > rateCap(lim.Rate) || (lim.BatchMax > 0 && n > lim.BatchMax) {
			// Slowed while waiting: a batch cut for the old limits may
			// now be too big to ever fit the budget.
			return nil, errRecut
		}
	}
	if lim.MaxWorkers <= 0 {
		return func() {}, nil
	}
	for {
		ok, err := l.AcquireSlot(ctx, spec.Name, slot, lim.MaxWorkers, r.cfg.SlotLease)
		if err != nil {
			return nil, err
		}
		if ok {
			stop := r.keepSlot(ctx, spec.Name, slot, lim.MaxWorkers)
			return func() {
				stop()
				// Released even when ctx is done, or the slot would idle
				// until its lease ran out.
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				defer cancel()
				if err := l.ReleaseSlot(rctx, spec.Name, slot); err != nil {
					r.log.WarnContext(ctx, "could not release batch slot (it expires by itself)", "job", spec.Name, "err", err)
				}
			}, nil
		}
		// Jittered, so waiting workers do not ask in lockstep.
		if err := clock.Sleep(ctx, 20*time.Millisecond+rand.N(80*time.Millisecond)); err != nil {
			return nil, err
		}
		if lim, err = recheck(); err != nil {
			return nil, err
		}
		if lim.MaxWorkers <= 0 {
			return func() {}, nil
		}
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

// rateLimit expresses rows/s for redis_rate, whose rate is a whole number
// per period: below 1 row/s the period stretches instead.
func rateLimit(rate float64, burst int) redis_rate.Limit {
	if rate < 1 {
		return redis_rate.Limit{Rate: 1, Burst: burst, Period: time.Duration(float64(time.Second) / rate)}
	}
	// A whole number per 10 s keeps one decimal of precision (31.25 rows/s
	// is 312 per 10 s) without changing the burst.
	return redis_rate.Limit{Rate: int(rate * 10), Burst: burst, Period: 10 * time.Second}
}
