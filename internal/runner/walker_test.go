package runner_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/metrics"
)

// TestTransientReadRetried: a read that times out waiting for a lock (an
// ALTER TABLE or a VACUUM FULL holding the table) is retried and counted
// like a failed write, in the metrics and in status, and the range
// completes once the lock is gone instead of failing.
func TestTransientReadRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(5_000)
	ctx := context.Background()
	spec := b.spec(`task_span: 5000
retries: 20
timeouts: {lock: 50ms, statement: 5s}
guard: {rules: []}`)
	b.start(spec)
	// Taken after start, whose preflight reads the table too.
	holder := lockTable(t, b.db.Pool, b.db.Table("orders"))
	m, err := metrics.New(prometheus.NewRegistry())
	require.NoError(t, err)
	b.worker(workerOpts{noGuard: true, metrics: m})

	// No batch can run before its read succeeds: every retry counted so
	// far is a read's.
	ebbtest.Eventually(t, "a failed read retried and counted", func() bool {
		return b.status().Retries > 0 && testutil.ToFloat64(m.Batches.WithLabelValues(b.job, "retried")) > 0
	})
	require.Zero(t, b.status().Batches, "no batch ran while the table was locked")
	require.NoError(t, holder.Rollback(ctx))
	s := b.waitState(control.StateDone)
	require.Zero(t, s.RangesFailed)
	require.Zero(t, testutil.ToFloat64(m.Batches.WithLabelValues(b.job, "failed")))
	b.assertFilledOnce()
}

// lockTable opens a transaction on pool that holds an ACCESS EXCLUSIVE lock
// on table, as a long ALTER TABLE would: even reads wait for it. Roll it
// back to release it (cleanup does, too).
func lockTable(t *testing.T, pool *pgxpool.Pool, table string) pgx.Tx {
	t.Helper()
	tx, err := pool.Begin(context.Background())
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	_, err = tx.Exec(context.Background(), "LOCK TABLE "+table+" IN ACCESS EXCLUSIVE MODE")
	require.NoError(t, err)
	return tx
}
