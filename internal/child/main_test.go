package child

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: every
// Process has a goroutine reaping it, which must end once it has exited.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
