package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ledger"
)

// TestAllowN: the fleet's budget grants rows up to its burst, refuses the
// rest with a wait and takes nothing for a refusal, and lives in the key
// DeleteJob removes.
func TestAllowN(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		lim  ledger.RateLimit
		// first fits the burst; second does not fit what is left.
		first, second int
		// retryAfter bounds the wait the refusal reports.
		minRetry, maxRetry time.Duration
	}{
		// Rates low enough that the refusal cannot lapse between two calls
		// on a loaded machine.
		{"rows per second", ledger.RateLimit{RowsPerSec: 10, Burst: 10}, 10, 5, time.Millisecond, 500 * time.Millisecond},
		// 2.5 rows/s is 400 ms a row; rounded down to 2 rows/s it would be 500.
		{"fractional rate keeps its decimal", ledger.RateLimit{RowsPerSec: 2.5, Burst: 5}, 5, 1, time.Millisecond, 400 * time.Millisecond},
		{"below one row per second", ledger.RateLimit{RowsPerSec: 0.5, Burst: 1}, 1, 1, time.Second, 2 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setup(t)
			b.saveJob(t, "j")
			ok, _, err := b.l.AllowN(ctx, "j", tc.lim, tc.first)
			require.NoError(t, err)
			require.True(t, ok, "a request within the burst is granted")
			require.Equal(t, int64(1), b.rdb.Exists(ctx, b.l.RateStoredKey("j")).Val(), "redis_rate stores the limiter at RateStoredKey")

			ok, retryAfter, err := b.l.AllowN(ctx, "j", tc.lim, tc.second)
			require.NoError(t, err)
			require.False(t, ok, "the burst is spent")
			require.GreaterOrEqual(t, retryAfter, tc.minRetry)
			require.LessOrEqual(t, retryAfter, tc.maxRetry)
			_, again, err := b.l.AllowN(ctx, "j", tc.lim, tc.second)
			require.NoError(t, err)
			require.LessOrEqual(t, again, retryAfter, "a refusal takes nothing from the budget")

			_, err = b.l.DeleteJob(ctx, "j")
			require.NoError(t, err)
			require.Zero(t, b.rdb.Exists(ctx, b.l.RateStoredKey("j")).Val(), "DeleteJob removes the limiter")
		})
	}
}

// TestAllowNOverBurst: a request larger than the burst is never granted,
// which is why callers size the burst to their largest batch.
func TestAllowNOverBurst(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ok, _, err := b.l.AllowN(context.Background(), "j", ledger.RateLimit{RowsPerSec: 1000, Burst: 5}, 6)
	require.NoError(t, err)
	require.False(t, ok)
}

// TestRateStoredKey: the stored name is redis_rate's prefix in front of the
// ledger's key, so it keeps the job's hash tag.
func TestRateStoredKey(t *testing.T) {
	t.Parallel()
	l := ledger.New(nil, "acme:")
	require.Equal(t, "acme:{orders-status}:rows", l.RateKey("orders-status"))
	require.Equal(t, "rate:acme:{orders-status}:rows", l.RateStoredKey("orders-status"))
}
