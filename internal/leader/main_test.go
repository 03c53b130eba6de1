package leader_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: the
// leader's loop, or a probe it started, must not outlive its caller.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
