package runner

import (
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/ebbhq/ebb/internal/batch"
)

// retryPolicy is how one range treats its failed reads and writes alike. A
// permanent error ends the range at once: retrying bad SQL only repeats it.
// A transient one (batch.IsTransient: a timeout, a deadlock, a lost
// connection) is tried again after a jittered exponential backoff, until
// maxAttempts attempts in a row have failed. Any success resets the count
// and the backoff, so a long range is not failed by hiccups hours apart.
//
// It is pure bookkeeping, without I/O or a clock, so it can be tested
// alone; the walker does the counting, logging and waiting it asks for.
type retryPolicy struct {
	maxAttempts int
	attempts    int
	backoff     *backoff.ExponentialBackOff
}

// newRetryPolicy returns a policy that gives up on the maxAttempts-th
// failure in a row (the job's retries).
func newRetryPolicy(maxAttempts int) *retryPolicy {
	return &retryPolicy{maxAttempts: maxAttempts, backoff: newBackoff()}
}

// failed records a failed attempt. retry says whether to try again, after
// wait; attempt is how many attempts in a row have now failed transiently.
func (p *retryPolicy) failed(err error) (attempt int, wait time.Duration, retry bool) {
	if !batch.IsTransient(err) {
		return p.attempts, 0, false
	}
	p.attempts++
	if p.attempts >= p.maxAttempts {
		return p.attempts, 0, false
	}
	return p.attempts, p.backoff.NextBackOff(), true
}

// succeeded forgets the failures so far.
func (p *retryPolicy) succeeded() {
	p.attempts = 0
	p.backoff.Reset()
}

// newBackoff is the schedule of retries. The jitter keeps a fleet of
// workers from retrying a hot spot in lockstep.
func newBackoff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{
		InitialInterval:     100 * time.Millisecond,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         5 * time.Second,
	}
}
