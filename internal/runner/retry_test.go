package runner

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/batch"
)

// TestRetryPolicy: transient failures are retried with a growing, jittered
// wait until the job's retries in a row have failed; anything else is not
// retried; a success starts the count and the schedule over.
func TestRetryPolicy(t *testing.T) {
	t.Parallel()
	transient := fmt.Errorf("read keys [1,10]: %w", &batch.TransientError{Err: errors.New("lock timeout")})
	permanent := fmt.Errorf("write batch [1,10]: %w", &batch.PermanentError{Err: errors.New("division by zero")})
	// InitialInterval ±50%, then doubled.
	first := [2]time.Duration{50 * time.Millisecond, 150 * time.Millisecond}
	second := [2]time.Duration{100 * time.Millisecond, 300 * time.Millisecond}

	t.Run("transient until the last attempt", func(t *testing.T) {
		t.Parallel()
		p := newRetryPolicy(3)
		for i, want := range [][2]time.Duration{first, second} {
			attempt, wait, retry := p.failed(transient)
			require.True(t, retry, "attempt %d", i+1)
			require.Equal(t, i+1, attempt)
			require.GreaterOrEqual(t, wait, want[0])
			require.LessOrEqual(t, wait, want[1])
		}
		attempt, _, retry := p.failed(transient)
		require.False(t, retry, "the third failure in a row gives up")
		require.Equal(t, 3, attempt)
	})
	t.Run("one attempt allowed", func(t *testing.T) {
		t.Parallel()
		attempt, _, retry := newRetryPolicy(1).failed(transient)
		require.False(t, retry)
		require.Equal(t, 1, attempt)
	})
	for name, err := range map[string]error{
		"permanent": permanent,
		// A cancelled query shows as 57014, but batch.Classify hands back
		// the context's error: stopping is not a reason to retry.
		"context cancelled": fmt.Errorf("write batch [1,10]: %w", context.Canceled),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := newRetryPolicy(5)
			attempt, _, retry := p.failed(err)
			require.False(t, retry)
			require.Zero(t, attempt, "only transient failures count as attempts")
		})
	}
	t.Run("success resets", func(t *testing.T) {
		t.Parallel()
		p := newRetryPolicy(3)
		p.failed(transient)
		p.failed(transient)
		p.succeeded()
		attempt, wait, retry := p.failed(transient)
		require.True(t, retry)
		require.Equal(t, 1, attempt)
		require.GreaterOrEqual(t, wait, first[0])
		require.LessOrEqual(t, wait, first[1])
	})
}

// TestIsFailure: a yield and an expired lease are not failures of the
// range: neither may count toward asynq archiving it.
func TestIsFailure(t *testing.T) {
	require.False(t, IsFailure(&YieldError{Reason: "paused"}))
	require.False(t, IsFailure(fmt.Errorf("processor: %w", asynq.ErrLeaseExpired)), "a dead or stalled worker is not the range's fault")
	require.True(t, IsFailure(errors.New("write batch: permission denied")))
}
