package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/keyspace"
	"github.com/ebbhq/ebb/internal/ledger"
)

// TestFence: once a newer token claimed a range, the older run's
// checkpoint, done mark and split are refused with ErrFenced and leave
// the ledger as the newer run wrote it.
func TestFence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.saveJob(t, "f")

	require.NoError(t, b.l.Fence(ctx, "f", 3, 1))
	require.NoError(t, b.l.Commit(ctx, "f", 3, 1, keyspace.Int(310), 10, time.Millisecond, time.Minute))

	// The range is claimed again (token 2) and the new run commits further.
	require.NoError(t, b.l.Fence(ctx, "f", 3, 2))
	require.NoError(t, b.l.Commit(ctx, "f", 3, 2, keyspace.Int(350), 40, time.Millisecond, time.Minute))

	// The stale run wakes up: everything it tries is refused.
	require.ErrorIs(t, b.l.Commit(ctx, "f", 3, 1, keyspace.Int(320), 10, time.Millisecond, time.Minute), ledger.ErrFenced)
	require.ErrorIs(t, b.l.MarkDone(ctx, "f", 3, 1), ledger.ErrFenced)
	_, err := b.l.Split(ctx, "f", 3, 1, [2]keyspace.Range{{Lo: keyspace.Int(321), Hi: keyspace.Int(360)}, {Lo: keyspace.Int(361), Hi: keyspace.Int(400)}})
	require.ErrorIs(t, err, ledger.ErrFenced)
	require.ErrorIs(t, b.l.Fence(ctx, "f", 3, 1), ledger.ErrFenced, "a claim older than the stored token is refused")

	cp, ok, err := b.l.Checkpoint(ctx, "f", 3)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, keyspace.Int(350), cp, "the newer run's cursor stays")
	s, err := b.l.Snapshot(ctx, "f")
	require.NoError(t, err)
	require.Equal(t, int64(50), s.Rows, "a refused checkpoint counts no rows")
	done, err := b.l.IsDone(ctx, "f", 3)
	require.NoError(t, err)
	require.False(t, done)
	splits, err := b.l.Splits(ctx, "f")
	require.NoError(t, err)
	require.Empty(t, splits)

	// Other ranges and unfenced writers (token 0: a dry run) are unaffected.
	require.NoError(t, b.l.Commit(ctx, "f", 4, 0, keyspace.Int(410), 1, time.Millisecond, time.Minute))
	require.NoError(t, b.l.MarkDone(ctx, "f", 3, 2))
}
