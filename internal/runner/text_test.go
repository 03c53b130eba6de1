package runner_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/keyspace"
)

// seedText creates orders keyed by non-ASCII, mixed-case text under an ICU
// collation (which orders "apfel" before "Bär" before "zebra", where byte
// order would put every capital first), n rows per prefix, all pending, and
// analyzes it: a text key is sliced at its histogram bounds.
func (b *testBundle) seedText(n int) int {
	orders := b.db.Table("orders")
	b.db.Exec(b.t, fmt.Sprintf(`CREATE TABLE %s (id text COLLATE "en-US-x-icu" PRIMARY KEY, legacy_state int NOT NULL,
		status text, hits int NOT NULL DEFAULT 0)`, orders))
	prefixes := []string{"apfel", "Apfel", "Bär", "bar", "élan", "Zoë", "zebra", "ñandú", "日本", "straße"}
	b.db.Exec(b.t, fmt.Sprintf(`INSERT INTO %s (id, legacy_state) SELECT p || '-' || g, g %% 7 FROM unnest($1::text[]) p, generate_series(1, %d) g`, orders, n), prefixes)
	b.db.Exec(b.t, "ANALYZE "+orders)
	return n * len(prefixes)
}

// TestBackfillText: a text key under a non-C collation is cut at its
// histogram bounds into ranges whose lower bounds (past the first) are
// exclusive; two workers fill every row exactly once, and verify passes,
// then finds a pending row.
func TestBackfillText(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rows := b.seedText(2000)
	orders := b.db.Table("orders")
	require.Positive(t, b.db.Count(t, `SELECT count(*) FROM `+orders+` WHERE id COLLATE "C" < $1 COLLATE "C"`, b.keyAt(0).String()),
		"byte order differs from the collation's: ordering matters in this test")
	res := b.start(b.spec("task_span: 4000\nguard: {rules: []}\ncheck: status = 's' || legacy_state AND hits = 1\n"))
	require.Greater(t, res.Ranges, int64(3), "about 20,000 rows by task_span 4,000, from the histogram")
	require.Equal(t, b.keyAt(0), res.From)
	require.Equal(t, b.keyAt(rows-1), res.To)
	for range 2 {
		b.worker(workerOpts{concurrency: 2})
	}
	s := b.waitState(control.StateDone)
	require.Equal(t, res.Ranges, s.RangesDone)
	require.Equal(t, int64(rows), s.RowsDone)
	b.assertFilledOnce()

	ctx := context.Background()
	r, err := b.ctl.Verify(ctx, b.db.Pool, b.job, control.VerifyOptions{ChunkRows: 4000})
	require.NoError(t, err)
	require.True(t, r.OK, "%v", r.Problems)
	require.Positive(t, r.Rows)
	last := b.keyAt(rows - 1)
	b.db.Exec(t, "UPDATE "+orders+" SET status = NULL WHERE id = $1", last.String())
	r, err = b.ctl.Verify(ctx, b.db.Pool, b.job, control.VerifyOptions{ChunkRows: 4000})
	require.ErrorIs(t, err, control.ErrVerifyFailed)
	require.Equal(t, []keyspace.Key{last}, r.PendingKeys)
	require.Equal(t, []int64{res.Ranges - 1}, r.DonePending, "the last key is the last range's upper bound")
}

// TestResumeTextCursor: a range whose checkpoint is a non-ASCII text key
// resumes strictly after it, in the collation's order.
func TestResumeTextCursor(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rows := b.seedText(500)
	res := b.start(b.spec(fmt.Sprintf("task_span: %d\nguard: {rules: []}\n", rows)))
	require.Equal(t, int64(1), res.Ranges)
	ctx := context.Background()
	cursor := b.keyAt(1234)
	orders := b.db.Table("orders")
	b.db.Exec(t, "UPDATE "+orders+" SET status = 's' || legacy_state, hits = 1 WHERE id < $1", cursor.String())
	require.NoError(t, b.redis.Client.HSet(ctx, b.ledger.CursorKey(b.job), "0", cursor.Encode()).Err())
	b.worker(workerOpts{concurrency: 2})
	s := b.waitState(control.StateDone)
	require.Equal(t, int64(rows-1235), s.RowsDone)
	require.Equal(t, int64(1), b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE status IS NULL AND id = $1", cursor.String()), "resumed strictly after the cursor")
	require.Equal(t, int64(1), b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE hits <> 1"), "every other row written once")
}
