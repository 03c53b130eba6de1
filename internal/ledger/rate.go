package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
)

// The fleet's rate limit: one GCRA budget per job, in rows, shared by every
// worker (redis_rate's script, so the budget is kept in Redis time and a
// worker's clock skew cannot widen it).

// redisRatePrefix is redis_rate's, not ebb's: redis_rate v10 stores a
// limiter under "rate:" + the key it is given (its unexported redisPrefix).
// It is declared here so RateStoredKey, DeleteJob and the key map in
// README.md name the key Redis really holds.
const redisRatePrefix = "rate:"

// RateKey is the key the ledger hands redis_rate for the job's limiter.
// redis_rate stores it under its own prefix; RateStoredKey is the key as it
// appears in Redis.
func (l *Ledger) RateKey(job string) string { return l.jobKey(job, "rows") }

// RateStoredKey is RateKey as redis_rate stores it. It keeps the {job} hash
// tag, so it lives in the job's Cluster slot like every other key of it.
func (l *Ledger) RateStoredKey(job string) string { return redisRatePrefix + l.RateKey(job) }

// RateLimit is a job's budget across the fleet.
type RateLimit struct {
	// RowsPerSec is the fleet's rate; it must be above zero (a job
	// without a rate does not ask the limiter).
	RowsPerSec float64
	// Burst is how far the fleet may run ahead of the rate, in rows. A
	// request for more rows than Burst is never granted, so it must be at
	// least the largest batch asked for.
	Burst int
}

// AllowN takes n rows from job's budget under lim. When the budget does not
// hold them yet, ok is false, nothing is taken, and retryAfter is when it
// will.
func (l *Ledger) AllowN(ctx context.Context, job string, lim RateLimit, n int) (ok bool, retryAfter time.Duration, err error) {
	res, err := l.limiter.AllowN(ctx, l.RateKey(job), redisRateLimit(lim), n)
	if err != nil {
		return false, 0, fmt.Errorf("take %d rows from the rate limit of %s: %w", n, job, err)
	}
	return res.Allowed > 0, res.RetryAfter, nil
}

// redisRateLimit expresses rows/s for redis_rate, whose rate is a whole
// number per period: below 1 row/s the period stretches instead.
func redisRateLimit(lim RateLimit) redis_rate.Limit {
	if lim.RowsPerSec < 1 {
		return redis_rate.Limit{Rate: 1, Burst: lim.Burst, Period: time.Duration(float64(time.Second) / lim.RowsPerSec)}
	}
	// A whole number per 10 s keeps one decimal of precision (31.25 rows/s
	// is 312 per 10 s) without changing the burst.
	return redis_rate.Limit{Rate: int(lim.RowsPerSec * 10), Burst: lim.Burst, Period: 10 * time.Second}
}
