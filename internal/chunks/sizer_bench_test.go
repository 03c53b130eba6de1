package chunks_test

import (
	"testing"
	"time"

	"github.com/ebbhq/ebb/internal/chunks"
)

// BenchmarkSizerObserve measures what every batch pays to the batch-size
// controller: one observation of its commit time and the next size, under
// a load that keeps it adapting (commit times around its target).
func BenchmarkSizerObserve(b *testing.B) {
	s := chunks.NewSizer(chunks.SizerConfig{Initial: 500, Min: 50, Max: 5000, Target: 300 * time.Millisecond})
	took := []time.Duration{200 * time.Millisecond, 350 * time.Millisecond, 280 * time.Millisecond, 1600 * time.Millisecond}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		n := s.Size()
		s.Observe(n, took[i%len(took)], chunks.Committed, true)
		i++
	}
}
