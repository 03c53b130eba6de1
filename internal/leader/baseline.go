package leader

import (
	"math"
	"slices"
	"time"
)

// p95 is the nearest-rank 95th percentile of ts, 0 for none: the fleet's
// commit_p95_seconds signal.
func p95(ts []time.Duration) time.Duration {
	if len(ts) == 0 {
		return 0
	}
	s := slices.Clone(ts)
	slices.Sort(s)
	return s[int(math.Ceil(0.95*float64(len(s))))-1]
}
