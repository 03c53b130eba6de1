package chunks

import (
	"slices"
	"sync"
	"time"
)

// Sizer steers the write batch size so that the p90 of recent commit times
// sits at a target, the way Spirit's dynamic chunker and pt-osc's chunk-time
// do. A small batch holds row locks briefly: a user write that collides with
// a 1 s batch waits up to 1 s, so the target is the lock time users can bear.
//
// It is pure and safe for concurrent use: a worker shares one per job among
// its goroutines and across ranges, so what one range learnt about commit
// times holds for the next one instead of starting over at the initial size.
type Sizer struct {
	mu      sync.Mutex
	given   SizerConfig
	cfg     SizerConfig
	size    int
	capped  int
	samples []time.Duration
}

// SizerConfig bounds the sizer. Fixed sizing is Min == Max == Initial.
type SizerConfig struct {
	Initial int
	Min     int
	Max     int
	// Target is the commit time the sizer aims the p90 at; zero turns
	// adaptation off (fixed size).
	Target time.Duration
}

// Outcome is what a batch's end says about the load it met.
type Outcome int

const (
	// Committed is a batch that committed.
	Committed Outcome = iota
	// Contended is a lock timeout, statement timeout or deadlock: the batch
	// collided with live traffic.
	Contended
)

const (
	// window is how many commits one step looks at: enough for a p90 that
	// one outlier does not move (Spirit waits for more than 10).
	window = 10
	// maxGrowth caps growth per step: a table that was quiet for ten
	// batches may not be quiet for the next, bigger one.
	maxGrowth = 1.5
	// panicFactor is how far over target one commit may run before the
	// size is cut at once instead of at the next step.
	panicFactor = 5
	// panicCut is how hard a blown or contended batch cuts the size.
	panicCut = 10
)

// NewSizer returns a sizer starting at cfg.Initial, clamped to [Min, Max].
func NewSizer(cfg SizerConfig) *Sizer {
	given := cfg
	if cfg.Min < 1 {
		cfg.Min = 1
	}
	if cfg.Max < cfg.Min {
		cfg.Max = cfg.Min
	}
	s := &Sizer{given: given, cfg: cfg}
	s.size = s.clamp(cfg.Initial)
	return s
}

// Config is the configuration the sizer was built with, as given.
func (s *Sizer) Config() SizerConfig { return s.given }

// Size is the batch size to cut next.
func (s *Sizer) Size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

// CapAndSize lowers the ceiling to limit (an operator's --batch-max, or the
// most rows the fleet's rate allows in one batch; zero or negative restores
// the configured one) and returns the size to cut next, in one step, so a
// concurrent Observe cannot slip between the two.
func (s *Sizer) CapAndSize(limit int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cap(limit)
	return s.size
}

func (s *Sizer) cap(limit int) {
	if limit <= 0 || limit > s.cfg.Max {
		limit = s.cfg.Max
	}
	s.capped = limit
	if s.size > limit {
		s.set(limit)
	}
}

// Observe feeds back one batch: the size it was cut at, how long BEGIN to
// COMMIT took, how it ended, and whether the guard was green (growth is only
// allowed then). Feedback from a batch cut at another size than the current
// one is ignored: it describes a load the sizer already reacted to.
func (s *Sizer) Observe(cutAt int, took time.Duration, out Outcome, green bool) {
	if s.cfg.Target <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	blown := took > panicFactor*s.cfg.Target || out == Contended
	if blown {
		// A contended batch cut at a bigger, older size was already
		// answered by the cut that made the size smaller.
		if cutAt <= s.size {
			s.set(s.size / panicCut)
		}
		return
	}
	if cutAt != s.size {
		return
	}
	s.samples = append(s.samples, took)
	if len(s.samples) < window {
		return
	}
	p90 := percentile(s.samples, 0.9)
	if p90 <= 0 {
		p90 = time.Millisecond
	}
	ratio := float64(s.cfg.Target) / float64(p90)
	if ratio > maxGrowth {
		ratio = maxGrowth
	}
	if ratio > 1 && !green {
		ratio = 1
	}
	s.set(int(float64(s.size) * ratio))
}

func (s *Sizer) set(n int) {
	s.size = s.clamp(n)
	s.samples = s.samples[:0]
}

func (s *Sizer) clamp(n int) int {
	hi := s.cfg.Max
	if s.capped > 0 && s.capped < hi {
		hi = s.capped
	}
	return min(max(n, s.cfg.Min), max(hi, s.cfg.Min))
}

func percentile(d []time.Duration, p float64) time.Duration {
	sorted := slices.Clone(d)
	slices.Sort(sorted)
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}
