package runner_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/control"
)

// TestEstimateChangesNothing: plan --estimate measures real batches (time,
// WAL, index entries) from across the key space and rolls every one back:
// the table is exactly as before, and the figures are the job's.
func TestEstimateChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(50_000)
	orders := b.db.Table("orders")
	b.db.Exec(t, "CREATE INDEX ON "+orders+" (status)")
	spec := b.spec("task_span: 10000\nbatch: 500\nrate: 1000\nsleep: 0s\n")
	e, err := control.EstimateCost(context.Background(), b.db.Pool, spec)
	require.NoError(t, err)
	require.Len(t, e.Samples, 5, "one batch from each of five ranges")
	require.Equal(t, int64(2500), e.Rows)
	require.Positive(t, e.SecondsPerRow)
	require.Greater(t, e.WALPerRow, 50.0, "an update writes a new row version to the WAL")
	require.Equal(t, 2.0, e.IndexEntriesPerRow, "status is indexed: no HOT update, an entry in each of the two indexes")
	require.InDelta(t, 50_000, e.Pending, 5_000)
	require.InDelta(t, 50, e.AtRate.Seconds(), 5, "50,000 rows at 1,000 rows/s")
	require.InDelta(t, e.WALPerRow*1000, e.WALPerSecond, 1)
	require.Equal(t, int64(50_000), b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE status IS NULL AND hits = 0"), "every sample rolled back")
}
