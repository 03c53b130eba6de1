package chunks

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const target = 300 * time.Millisecond

func feed(s *Sizer, n int, took time.Duration, green bool) {
	for range n {
		s.Observe(s.Size(), took, Committed, green)
	}
}

func TestSizer(t *testing.T) {
	t.Parallel()
	cfg := SizerConfig{Initial: 500, Min: 50, Max: 5000, Target: target}
	tests := []struct {
		name string
		run  func(s *Sizer)
		want int
	}{
		{"fast commits grow at most 1.5x a step", func(s *Sizer) { feed(s, window, 10*time.Millisecond, true) }, 750},
		{"no growth before a full window", func(s *Sizer) { feed(s, window-1, 10*time.Millisecond, true) }, 500},
		{"two steps compound", func(s *Sizer) { feed(s, 2*window, 10*time.Millisecond, true) }, 1125},
		{"no growth while the guard is not green", func(s *Sizer) { feed(s, 3*window, 10*time.Millisecond, false) }, 500},
		{"slow commits shrink in proportion", func(s *Sizer) { feed(s, window, 600*time.Millisecond, true) }, 250},
		{"slow commits shrink even when not green", func(s *Sizer) { feed(s, window, 600*time.Millisecond, false) }, 250},
		{"on target holds", func(s *Sizer) { feed(s, window, target, true) }, 500},
		{"one commit over 5x target cuts by 10 at once", func(s *Sizer) {
			s.Observe(500, 5*target+time.Millisecond, Committed, true)
		}, 50},
		{"a lock timeout cuts by 10", func(s *Sizer) { s.Observe(500, 10*time.Millisecond, Contended, true) }, 50},
		{"never below min", func(s *Sizer) {
			s.Observe(500, time.Minute, Committed, true)
			s.Observe(50, time.Minute, Committed, true)
		}, 50},
		{"never above max", func(s *Sizer) { feed(s, 20*window, time.Millisecond, true) }, 5000},
		{"feedback from an older size is ignored", func(s *Sizer) {
			s.Observe(500, 10*time.Millisecond, Contended, true) // now 50
			for range window {
				s.Observe(500, time.Millisecond, Committed, true) // stale: cut at 500
			}
		}, 50},
		{"a contended batch of an older, bigger size does not cut again", func(s *Sizer) {
			s.Observe(500, 10*time.Millisecond, Contended, true) // now 50
			s.Observe(500, 10*time.Millisecond, Contended, true)
		}, 50},
		{"p90 ignores one outlier in ten", func(s *Sizer) {
			feed(s, window-1, 200*time.Millisecond, true)
			s.Observe(500, 1400*time.Millisecond, Committed, true) // under 5x, the 10th sample
		}, 750},
		{"cap lowers the ceiling", func(s *Sizer) {
			s.CapAndSize(200)
			feed(s, 3*window, time.Millisecond, true)
		}, 200},
		{"cap cleared restores the ceiling", func(s *Sizer) {
			s.CapAndSize(200)
			s.CapAndSize(0)
			feed(s, window, time.Millisecond, true)
		}, 300},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := NewSizer(cfg)
			tc.run(s)
			require.Equal(t, tc.want, s.Size())
		})
	}
}

func TestSizerFixed(t *testing.T) {
	t.Parallel()
	s := NewSizer(SizerConfig{Initial: 500, Min: 500, Max: 500})
	s.Observe(500, time.Hour, Contended, true)
	feed(s, 3*window, time.Millisecond, true)
	require.Equal(t, 500, s.Size(), "a fixed batch never moves")
}

func TestSizerClampsInitial(t *testing.T) {
	t.Parallel()
	require.Equal(t, 50, NewSizer(SizerConfig{Initial: 1, Min: 50, Max: 100, Target: target}).Size())
	require.Equal(t, 100, NewSizer(SizerConfig{Initial: 1000, Min: 50, Max: 100, Target: target}).Size())
}

// TestSizerShared: a worker's goroutines share one sizer per job. Slow
// commits reported from many goroutines at once still steer it down, always
// within its bounds (and -race sees no data race).
func TestSizerShared(t *testing.T) {
	t.Parallel()
	s := NewSizer(SizerConfig{Initial: 500, Min: 50, Max: 5000, Target: target})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 * window {
				size := s.CapAndSize(1000)
				require.True(t, size >= 50 && size <= 1000, "size %d out of bounds", size)
				s.Observe(size, 2*target, Committed, true)
			}
		}()
	}
	wg.Wait()
	require.Less(t, s.Size(), 500, "commits at twice the target shrink the shared size")
}
