package probe

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: the
// Sampler runs probes on goroutines, and one must not outlive its caller.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
