package ledger

import (
	"sync"
	"time"
)

// redisClock is Redis's TIME as last read, with the local monotonic
// reading taken as it arrived. Every fleet clock is Redis's (decisions,
// commit times, slots), and a worker that reads TIME with its controls
// anyway can tell the time on Redis's clock without asking again: that
// saved the TIME each batch's checkpoint used to issue.
type redisClock struct {
	mu    sync.Mutex
	redis time.Time
	local time.Time
}

// clockTrust is how long one TIME reading stands in for Redis's clock. The
// monotonic clock does not drift by a millisecond in a minute; the limit
// only keeps a worker that stopped reading controls honest.
const clockTrust = time.Minute

func (c *redisClock) observe(redisNow time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.redis, c.local = redisNow, time.Now()
}

// now is Redis's clock estimated from the last reading; ok is false
// without a recent one.
func (c *redisClock) now() (t time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.local.IsZero() {
		return time.Time{}, false
	}
	age := time.Since(c.local)
	if age > clockTrust {
		return time.Time{}, false
	}
	return c.redis.Add(age), true
}
