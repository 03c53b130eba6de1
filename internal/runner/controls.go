package runner

import (
	"context"
	"sync"
	"time"

	"github.com/ebbhq/ebb/internal/ledger"
)

// DefaultControlsMaxAge is how long one read of a job's guard decision and
// overrides serves this worker's batches. They change at most once a guard
// check or an operator's command, while a worker may commit dozens of
// batches a second; reading them before every batch cost three of the
// sixteen Redis commands each batch took. Half a second is well inside a
// decision's lifetime (at least 2 s). The pause switches are not cached:
// they are read before every batch, so a pause bites before the next one.
const DefaultControlsMaxAge = 500 * time.Millisecond

// controlsCache shares one ledger.Controls read per job and queue among a
// worker's goroutines for up to maxAge, with fresh pause switches each
// time. One goroutine reads while the others wait for its answer.
type controlsCache struct {
	maxAge  time.Duration
	mu      sync.Mutex
	entries map[[2]string]*controlsEntry
}

type controlsEntry struct {
	mu sync.Mutex
	c  ledger.Controls
	// at is when c was read, on the local monotonic clock.
	at time.Time
}

func newControlsCache(maxAge time.Duration) *controlsCache {
	return &controlsCache{maxAge: maxAge, entries: map[[2]string]*controlsEntry{}}
}

// get returns job's controls: the pause switches read now, the rest read
// at most maxAge ago. Their Now is moved on by the time since the read: it
// judges a decision's expiry, which must not look younger than it is.
func (cc *controlsCache) get(ctx context.Context, l *ledger.Ledger, job, queue string) (ledger.Controls, error) {
	e := cc.entry(job, queue)
	e.mu.Lock()
	age := time.Since(e.at)
	if e.at.IsZero() || age >= cc.maxAge {
		defer e.mu.Unlock()
		return e.read(ctx, l, job, queue)
	}
	c := e.c
	e.mu.Unlock()
	pauses, err := l.Pauses(ctx, job, queue)
	if err != nil {
		return ledger.Controls{}, err
	}
	c.Pause, c.Now = pauses, c.Now.Add(age)
	return c, nil
}

// fresh reads job's controls now and keeps them for the next batches.
func (cc *controlsCache) fresh(ctx context.Context, l *ledger.Ledger, job, queue string) (ledger.Controls, error) {
	e := cc.entry(job, queue)
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.read(ctx, l, job, queue)
}

// read reads job's controls into e; the caller holds e.mu.
func (e *controlsEntry) read(ctx context.Context, l *ledger.Ledger, job, queue string) (ledger.Controls, error) {
	c, err := l.Controls(ctx, job, queue)
	if err != nil {
		return c, err
	}
	e.c, e.at = c, time.Now()
	return c, nil
}

func (cc *controlsCache) entry(job, queue string) *controlsEntry {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	k := [2]string{job, queue}
	e := cc.entries[k]
	if e == nil {
		e = &controlsEntry{}
		cc.entries[k] = e
	}
	return e
}
