package pause_test

import (
	"testing"

	"github.com/ebbhq/ebb/internal/pause"
)

// FuzzFlagOn: any value in a pause key reads without a panic; only the
// documented "off" words read as not paused, and those are never odd.
// Seeds: below and testdata/fuzz/FuzzFlagOn.
func FuzzFlagOn(f *testing.F) {
	for _, seed := range []string{"", "0", "1", "true", "off", " OFF ", "paused by alice at 2026-01-01T00:00:00Z", "yes please", "\x00", "fals"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		on, odd := pause.FlagOn(v)
		if !on && odd {
			t.Fatalf("%q: not paused yet odd", v)
		}
		_ = pause.FlagReason("ebb:pause", v)
	})
}
