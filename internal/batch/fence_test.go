package batch_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/batch"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
)

// TestFence: a batch carrying a token older than the range's newest claim
// rolls back with ErrFenced and changes no row, and a claim returns the
// last key committed under the previous token, written with the batch.
func TestFence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, 300)
	fence := b.db.Table("_ebb_fence")
	// A counter with no pending predicate: applying a batch twice shows.
	b.db.Exec(t, `ALTER TABLE `+b.table+` ADD COLUMN n int NOT NULL DEFAULT 0`)
	write := "sql: UPDATE " + b.table + " SET n = n + 1 WHERE id BETWEEN $1 AND $2"

	stale := b.executor(t, nil, write, "")
	require.NoError(t, stale.EnsureFenceTable(ctx, fence))
	require.NoError(t, stale.EnsureFenceTable(ctx, fence), "a second worker finds the table there")
	f1, _, ok, err := stale.Claim(ctx, fence, "batch-test", "run-a", 0)
	require.NoError(t, err)
	require.False(t, ok, "a fresh range has no cursor")
	_, err = stale.Write(ctx, keyspace.Int(1), keyspace.Int(100))
	require.NoError(t, err)

	// Another worker claims the range: it resumes after the first batch.
	fresh := b.executor(t, nil, write, "")
	f2, cursor, ok, err := fresh.Claim(ctx, fence, "batch-test", "run-a", 0)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, keyspace.Int(100), cursor)
	require.Greater(t, f2.Token, f1.Token)

	_, err = stale.Write(ctx, keyspace.Int(101), keyspace.Int(200))
	require.ErrorIs(t, err, batch.ErrFenced)
	require.False(t, batch.IsTransient(err) || batch.IsPermanent(err), "fenced is neither retried nor a failure of the range")
	require.Zero(t, b.db.Count(t, `SELECT count(*) FROM `+b.table+` WHERE id > 100 AND n > 0`), "the stale batch changed nothing")

	_, err = fresh.Write(ctx, keyspace.Int(101), keyspace.Int(300))
	require.NoError(t, err)
	require.Equal(t, int64(300), b.db.Count(t, `SELECT count(*) FROM `+b.table+` WHERE n = 1`), "every row applied exactly once")

	// The job started again from scratch (another run) forgets the cursor
	// but never lowers the token; repair forgets it within a run.
	f3, _, ok, err := fresh.Claim(ctx, fence, "batch-test", "run-b", 0)
	require.NoError(t, err)
	require.False(t, ok, "a new run does not resume an old run's cursor")
	require.Greater(t, f3.Token, f2.Token)
	_, err = fresh.Write(ctx, keyspace.Int(1), keyspace.Int(5))
	require.NoError(t, err)
	require.NoError(t, batch.ForgetCursors(ctx, b.db.Pool, fence, "batch-test", []int64{0}))
	_, _, ok, err = fresh.Claim(ctx, fence, "batch-test", "run-b", 0)
	require.NoError(t, err)
	require.False(t, ok, "a reopened range starts over")
}

// TestFenceKeyQuoting: a text key holding quotes and the dollar-quote tag
// is a cursor like any other, not SQL.
func TestFenceKeyQuoting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, 1)
	fence := b.db.Table("_ebb_fence")
	b.db.Exec(t, `CREATE TABLE `+b.db.Table("tags")+` (k text PRIMARY KEY, v int)`)
	evil := `x'$ebb0$; DROP TABLE ` + b.table + `; --`
	b.db.Exec(t, `INSERT INTO `+b.db.Table("tags")+` VALUES ($1, 0)`, evil)
	spec := `name: batch-test
table: ` + b.db.Table("tags") + `
key: k
pending: v = 0
set: v = 1`
	tex := executorFor(t, b.db.Pool, spec)
	require.NoError(t, tex.EnsureFenceTable(ctx, fence))
	_, _, _, err := tex.Claim(ctx, fence, "batch-test", "r", 0)
	require.NoError(t, err)
	_, err = tex.Write(ctx, keyspace.NewKey(evil), keyspace.NewKey(evil))
	require.NoError(t, err)
	_, cursor, ok, err := tex.Claim(ctx, fence, "batch-test", "r", 0)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, keyspace.NewKey(evil), cursor)
	require.Equal(t, int64(1), b.db.Count(t, `SELECT count(*) FROM `+b.table), "the key's text ran as no SQL")
}

// TestIdleInTransaction: a batch transaction whose worker stops talking
// (SIGSTOP, a frozen VM) loses its session and its locks within
// IdleInTransaction, so the worker that takes the range over, and live
// traffic, are not held up by them.
func TestIdleInTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, 10)
	spec, err := jobspec.Parse([]byte("name: batch-test\ntable: " + b.table + "\nkey: id\npending: status IS NULL\nset: status = 'x'\n"))
	require.NoError(t, err)

	tx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	require.NoError(t, batch.SetLocal(ctx, tx, spec))
	var setting string
	require.NoError(t, tx.QueryRow(ctx, "SHOW idle_in_transaction_session_timeout").Scan(&setting))
	require.Equal(t, "10s", setting)
	_, err = tx.Exec(ctx, `UPDATE `+b.table+` SET status = 'batch' WHERE id = 1`)
	require.NoError(t, err)
	// The worker stalls here, before COMMIT, holding row 1.

	live, cancel := context.WithTimeout(ctx, batch.IdleInTransaction+20*time.Second)
	defer cancel()
	_, err = b.db.Pool.Exec(live, `UPDATE `+b.table+` SET status = 'live' WHERE id = 1`)
	require.NoError(t, err, "the live update gets the row once the stalled session is ended")
	require.Error(t, tx.Commit(ctx), "the stalled batch cannot commit afterwards")
	require.Equal(t, int64(1), b.db.Count(t, `SELECT count(*) FROM `+b.table+` WHERE id = 1 AND status = 'live'`))
}

// executorFor is an executor for a whole job file.
func executorFor(t *testing.T, pool *pgxpool.Pool, yaml string) *batch.Executor {
	t.Helper()
	spec, err := jobspec.Parse([]byte(yaml))
	require.NoError(t, err)
	sp, err := keyspace.Open(context.Background(), pool, spec.QuotedTable(), spec.Key...)
	require.NoError(t, err)
	return batch.NewExecutor(pool, spec, sp)
}
