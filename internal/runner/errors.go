package runner

import (
	"errors"
	"fmt"
	"time"
)

// ErrYield marks a range handed back to the queue on purpose (pause, drain).
// errors.Is(err, ErrYield) matches every *YieldError.
var ErrYield = errors.New("range handed back")

// YieldError hands a range back to the queue without counting a failure; it
// is offered again after After.
type YieldError struct {
	Reason string
	After  time.Duration
	// Idle is set when the range did no work before yielding.
	Idle bool
}

func (e *YieldError) Error() string { return "range handed back: " + e.Reason }

// Is matches ErrYield.
func (e *YieldError) Is(target error) bool { return target == ErrYield }

// GaveUpError is a batch that kept failing transiently for all its attempts;
// the range fails with the last error so an operator can look at the spot.
type GaveUpError struct {
	Attempts int
	Err      error
}

func (e *GaveUpError) Error() string {
	return fmt.Sprintf("gave up after %d attempts: %v", e.Attempts, e.Err)
}

func (e *GaveUpError) Unwrap() error { return e.Err }
