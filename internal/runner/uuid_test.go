package runner_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/keyspace"
)

// seedUUID creates orders keyed by random uuids, n rows, all pending, and
// analyzes it: a uuid key is sliced by the table's row estimate.
func (b *testBundle) seedUUID(n int) {
	orders := b.db.Table("orders")
	b.db.Exec(b.t, fmt.Sprintf(`CREATE TABLE %s (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), legacy_state int NOT NULL,
		status text, hits int NOT NULL DEFAULT 0)`, orders))
	b.db.Exec(b.t, fmt.Sprintf(`INSERT INTO %s (legacy_state) SELECT g %% 7 FROM generate_series(1, %d) g`, orders, n))
	b.db.Exec(b.t, "ANALYZE "+orders)
}

// keyAt is the key of the n-th row (from 0) in the key's own order (the
// column's collation for a text key), read by the database.
func (b *testBundle) keyAt(n int) keyspace.Key {
	var id string
	require.NoError(b.t, b.db.Pool.QueryRow(context.Background(),
		fmt.Sprintf("SELECT id::text FROM %s ORDER BY id OFFSET %d LIMIT 1", b.db.Table("orders"), n)).Scan(&id))
	return keyspace.NewKey(id)
}

// TestBackfillUUID: a table keyed by gen_random_uuid() is cut into about
// rows/task_span ranges between its smallest and largest uuid; two workers
// fill every pending row exactly once, and verify (pending counts by chunk,
// spot checks at random uuids) finds nothing wrong.
func TestBackfillUUID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedUUID(40_000)
	orders := b.db.Table("orders")
	b.db.Exec(t, "UPDATE "+orders+" SET status = 'keep' WHERE legacy_state = 0 AND hits = 0 AND id < '10000000-0000-0000-0000-000000000000'")
	kept := b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE status = 'keep'")
	spec := b.spec("task_span: 10000\nguard: {rules: []}\ncheck: status IS NOT NULL AND (status = 'keep' OR hits = 1)\n")
	res := b.start(spec)
	require.Equal(t, int64(4), res.Ranges, "40,000 rows by task_span 10,000")
	require.Equal(t, b.keyAt(0), res.From)
	require.Equal(t, b.keyAt(40_000-1), res.To)
	for range 2 {
		b.worker(workerOpts{concurrency: 2})
	}
	s := b.waitState(control.StateDone)
	require.Equal(t, int64(4), s.RangesDone)
	require.Equal(t, 40_000-kept, s.RowsDone)
	require.Equal(t, kept, b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE status = 'keep' AND hits = 0"), "rows not pending are untouched")
	require.Zero(t, b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE status IS NULL"), "rows skipped")
	require.Zero(t, b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE status <> 'keep' AND (status <> 's' || legacy_state OR hits <> 1)"), "rows written more than once")

	ctx := context.Background()
	r, err := b.ctl.Verify(ctx, b.db.Pool, b.job, control.VerifyOptions{ChunkRows: 4000})
	require.NoError(t, err)
	require.True(t, r.OK, "%v", r.Problems)
	require.Equal(t, int64(40_000), r.Rows, "every row read")
	require.GreaterOrEqual(t, r.Chunks, 10, "40,000 rows in chunks of at most 4,000")
	// A pending row is found, and its range is named from its uuid.
	last := b.keyAt(40_000 - 1)
	b.db.Exec(t, "UPDATE "+orders+" SET status = NULL WHERE id = $1", last.String())
	r, err = b.ctl.Verify(ctx, b.db.Pool, b.job, control.VerifyOptions{ChunkRows: 4000})
	require.ErrorIs(t, err, control.ErrVerifyFailed)
	require.Equal(t, []keyspace.Key{last}, r.PendingKeys)
	require.Equal(t, []int64{3}, r.DonePending)
}

// TestDrainUUID: a worker stopped mid-range leaves a uuid checkpoint, and
// the next worker resumes strictly after it: nothing skipped or redone.
func TestDrainUUID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedUUID(30_000)
	res := b.start(b.spec("task_span: 30000\nbatch: 100\nsleep: 5ms\n"))
	require.Equal(t, int64(1), res.Ranges)
	var draining atomic.Bool
	first := b.worker(workerOpts{draining: draining.Load})
	ebbtest.Eventually(t, "some batches committed", func() bool { return b.status().Batches >= 3 })
	draining.Store(true)
	first.Shutdown()
	cp, ok, err := b.ledger.Checkpoint(context.Background(), b.job, 0)
	require.NoError(t, err)
	require.True(t, ok, "the drained range has a checkpoint")
	require.Less(t, cp.String(), res.To.String(), "stopped mid-range")
	require.Positive(t, b.db.Count(t, "SELECT count(*) FROM "+b.db.Table("orders")+" WHERE status IS NULL"))
	b.worker(workerOpts{})
	b.waitState(control.StateDone)
	b.assertFilledOnce()
}

// TestResumeUUIDCursor: a range whose checkpoint is a uuid resumes strictly
// after it. The row at the cursor is left pending on purpose (a hand edit,
// say): an inclusive resume would write it.
func TestResumeUUIDCursor(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedUUID(20_000)
	b.start(b.spec("task_span: 20000\nguard: {rules: []}\n"))
	ctx := context.Background()
	cursor := b.keyAt(5000)
	orders := b.db.Table("orders")
	b.db.Exec(t, "UPDATE "+orders+" SET status = 's' || legacy_state, hits = 1 WHERE id < $1", cursor.String())
	require.NoError(t, b.redis.Client.HSet(ctx, b.ledger.CursorKey(b.job), "0", cursor.Encode()).Err())
	b.worker(workerOpts{concurrency: 2})
	s := b.waitState(control.StateDone)
	require.Equal(t, int64(20_000-5001), s.RowsDone)
	require.Equal(t, int64(1), b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE status IS NULL AND id = $1", cursor.String()), "resumed strictly after the cursor")
	require.Equal(t, int64(1), b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE hits <> 1"), "every other row written once")
}

// TestSplitUUIDOnRepeatedTimeouts: a uuid range that keeps timing out at
// one row is split at its 128-bit midpoint, the halves (stored as uuid
// bounds) are requeued and the rest completes; a start after the lock is
// gone finishes the locked half. The locked row's half is halved about 128
// times before it is one uuid and fails (see the keyspace README), hence
// one attempt and a short lock timeout.
func TestSplitUUIDOnRepeatedTimeouts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seedUUID(2_000)
	locked := b.keyAt(500)
	b.splitAtLock(t, fmt.Sprintf("id = '%s'", locked), "task_span: 1000", 2, func(splits map[int64]keyspace.Range) {
		for _, r := range splits {
			require.False(t, keyspace.Inverted(r.Lo, r.Hi), "split %v", r)
		}
	})
}
