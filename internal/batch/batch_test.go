package batch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/batch"
	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
)

type testBundle struct {
	db    *ebbtest.DB
	table string
}

// setup makes a table of ids 1..n, inserted in random physical order, where
// every third id (3, 6, 9, …) is already done.
func setup(t *testing.T, n int) *testBundle {
	t.Helper()
	db := ebbtest.Schema(t)
	table := db.Table("orders")
	db.Exec(t, `CREATE TABLE `+table+` (id bigint PRIMARY KEY, status text)`)
	db.Exec(t, `INSERT INTO `+table+` SELECT g, CASE WHEN g % 3 = 0 THEN 'done' END FROM generate_series(1, $1::int) g ORDER BY random()`, n)
	return &testBundle{db: db, table: table}
}

// executor parses a job file for the bundle's table; write is its set: or
// sql: line and extra any further YAML.
func (b *testBundle) executor(t *testing.T, pool *pgxpool.Pool, write, extra string) *batch.Executor {
	t.Helper()
	yaml := fmt.Sprintf("name: batch-test\ntable: %s\nkey: id\npending: status IS NULL\n%s\n%s", b.table, write, extra)
	spec, err := jobspec.Parse([]byte(yaml))
	require.NoError(t, err)
	if pool == nil {
		pool = b.db.Pool
	}
	return batch.NewExecutor(pool, spec, space(t, spec))
}

// space is the key space of spec.
func space(t *testing.T, spec *jobspec.Spec) keyspace.Space {
	t.Helper()
	sp, err := keyspace.New(spec.Key...)
	require.NoError(t, err)
	return sp
}

// keys are integer keys.
func keys(vs ...int64) []keyspace.Key {
	var out []keyspace.Key
	for _, v := range vs {
		out = append(out, keyspace.Int(v))
	}
	return out
}

// pending counts rows still to do in [lo, hi], as any other session sees
// them: only committed work counts.
func (b *testBundle) pending(t *testing.T, lo, hi int64) int64 {
	t.Helper()
	return b.db.Count(t, `SELECT count(*) FROM `+b.table+` WHERE id BETWEEN $1 AND $2 AND status IS NULL`, lo, hi)
}

// holdLock locks row id from another connection until the test ends.
func (b *testBundle) holdLock(t *testing.T, id int64) {
	t.Helper()
	ctx := context.Background()
	tx, err := b.db.Pool.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	_, err = tx.Exec(ctx, `SELECT 1 FROM `+b.table+` WHERE id = $1 FOR UPDATE`, id)
	require.NoError(t, err)
}

func TestWrite(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		write string
	}{
		{"set", "set: status = 'done'"},
		{"sql", "sql: UPDATE %s SET status = 'done' WHERE id BETWEEN $1 AND $2 AND status IS NULL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setup(t, 100)
			write := tc.write
			if strings.Contains(write, "%s") {
				write = fmt.Sprintf(write, b.table)
			}
			exec := b.executor(t, nil, write, "")

			// [1,10] holds 10 ids of which 3, 6, 9 are done: 7 to write.
			n, err := exec.Write(ctx, keyspace.Int(1), keyspace.Int(10))
			require.NoError(t, err)
			require.Equal(t, int64(7), n)
			require.Zero(t, b.pending(t, 1, 10), "committed, so another session sees it")
			require.Equal(t, int64(67-7), b.pending(t, 1, 100), "bounds are inclusive and nothing outside them moved")

			// The pending predicate makes a redo of the same bounds a no-op.
			n, err = exec.Write(ctx, keyspace.Int(1), keyspace.Int(10))
			require.NoError(t, err)
			require.Zero(t, n)

			// One key is a batch too.
			n, err = exec.Write(ctx, keyspace.Int(11), keyspace.Int(11))
			require.NoError(t, err)
			require.Equal(t, int64(1), n)
			require.Zero(t, b.pending(t, 11, 11))
			require.Equal(t, int64(1), b.pending(t, 10, 13), "only 13 is left in [10,13]")
		})
	}
}

// TestWriteLockTimeout: a row held by live traffic makes the batch give up
// after lock_timeout with a transient error, instead of queueing behind the
// lock and making live traffic queue behind the batch.
func TestWriteLockTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, 100)
	// The statement timeout is far away, so only lock_timeout can end the
	// wait; the ctx deadline is only there to fail rather than hang.
	exec := b.executor(t, nil, "set: status = 'done'", "timeouts: {lock: 100ms, statement: 10m}\n")
	b.holdLock(t, 5)

	ctx, cancel := context.WithTimeout(context.Background(), ebbtest.WaitTimeout)
	t.Cleanup(cancel)
	n, err := exec.Write(ctx, keyspace.Int(1), keyspace.Int(10))
	require.Error(t, err)
	require.Zero(t, n)
	require.True(t, batch.IsTransient(err), "lock timeout must be retried: %v", err)
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "%v", err)
	require.Equal(t, "55P03", pgErr.Code, "lock_not_available: lock_timeout fired")
	require.Contains(t, err.Error(), "write batch [1,10]")
	require.Equal(t, int64(7), b.pending(t, 1, 10), "the failed batch rolled back as a whole")

	// Rows away from the lock are still writable meanwhile.
	n, err = exec.Write(ctx, keyspace.Int(11), keyspace.Int(20))
	require.NoError(t, err)
	require.Equal(t, int64(7), n)
}

// TestWriteTimeoutsStayLocal: SET LOCAL ends with the transaction, so a
// batch's short timeouts never leak into the next user of the connection.
func TestWriteTimeoutsStayLocal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, 10)
	cfg, err := pgxpool.ParseConfig(ebbtest.DatabaseURL())
	require.NoError(t, err)
	cfg.MaxConns = 1 // every call below runs on the same session
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	show := func() (lock, stmt string) {
		require.NoError(t, pool.QueryRow(ctx, "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')").Scan(&lock, &stmt))
		return lock, stmt
	}
	lock0, stmt0 := show()
	exec := b.executor(t, pool, "set: status = 'done'", "timeouts: {lock: 123ms, statement: 4567ms}\n")
	_, err = exec.Write(ctx, keyspace.Int(1), keyspace.Int(10))
	require.NoError(t, err)
	_, err = exec.ReadFrom(ctx, keyspace.Int(1), keyspace.Int(10), 5)
	require.NoError(t, err)
	lock1, stmt1 := show()
	require.Equal(t, lock0, lock1)
	require.Equal(t, stmt0, stmt1)
}

// TestWriteStatementTimeout: a write slower than statement_timeout is
// cancelled by the server and reads as transient.
func TestWriteStatementTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, 10)
	exec := b.executor(t, nil,
		"sql: UPDATE "+b.table+" SET status = 'done' WHERE id BETWEEN $1 AND $2 AND status IS NULL AND pg_sleep(60) IS NOT NULL",
		"timeouts: {statement: 100ms}\n")
	_, err := exec.Write(context.Background(), keyspace.Int(1), keyspace.Int(10))
	require.True(t, batch.IsTransient(err), "%v", err)
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "%v", err)
	require.Equal(t, "57014", pgErr.Code)
	require.Equal(t, int64(7), b.pending(t, 1, 10))
}

// TestWritePermanent: a write the database rejects for what it says fails
// permanently and commits nothing.
func TestWritePermanent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		write string
		state string
	}{
		{"undefined column", "set: statuss = 'done'", "42703"},
		{"division by zero", "set: status = (1 / (id - id))::text", "22012"},
		{"not null violation", "set: status = NULL, id = NULL", "23502"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, 10)
			exec := b.executor(t, nil, tc.write, "")
			_, err := exec.Write(context.Background(), keyspace.Int(1), keyspace.Int(10))
			require.True(t, batch.IsPermanent(err), "%v", err)
			require.False(t, batch.IsTransient(err))
			var pgErr *pgconn.PgError
			require.True(t, errors.As(err, &pgErr), "%v", err)
			require.Equal(t, tc.state, pgErr.Code)
			require.Equal(t, int64(7), b.pending(t, 1, 10))
		})
	}
}

// TestWriteCancelled: a worker whose context is done (lease lost, shutdown)
// must never commit into the range.
func TestWriteCancelled(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ctx  func(t *testing.T) context.Context
		want error
	}{
		{"cancelled", func(t *testing.T) context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, context.Canceled},
		{"deadline passed", func(t *testing.T) context.Context {
			ctx, cancel := context.WithTimeout(context.Background(), 0)
			t.Cleanup(cancel)
			return ctx
		}, context.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, 10)
			exec := b.executor(t, nil, "set: status = 'done'", "")
			n, err := exec.Write(tc.ctx(t), keyspace.Int(1), keyspace.Int(10))
			require.ErrorIs(t, err, tc.want)
			require.Zero(t, n)
			require.False(t, batch.IsTransient(err), "a stop is not a retry: %v", err)
			require.False(t, batch.IsPermanent(err), "a stop is not a failure: %v", err)
			require.Equal(t, int64(7), b.pending(t, 1, 10))
		})
	}
}

// TestWriteCancelledWhileWaiting: cancelling while the write waits on a lock
// ends the call with the context's error, and the write never commits.
func TestWriteCancelledWhileWaiting(t *testing.T) {
	t.Parallel()
	b := setup(t, 10)
	exec := b.executor(t, nil, "set: status = 'done'", "timeouts: {lock: 10m, statement: 10m}\n")
	b.holdLock(t, 5)

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() {
		_, err := exec.Write(ctx, keyspace.Int(1), keyspace.Int(10))
		done <- err
	}()
	ebbtest.Eventually(t, "the write to wait on the row lock", func() bool {
		return b.db.Count(t, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE %' AND position($1 in query) > 0`, b.db.Schema) > 0
	})
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
		require.False(t, batch.IsTransient(err), "%v", err)
	case <-time.After(ebbtest.WaitTimeout):
		t.Fatal("Write did not return after its context was cancelled")
	}
	require.Equal(t, int64(7), b.pending(t, 1, 10))
}

func TestReadKeys(t *testing.T) {
	t.Parallel()
	b := setup(t, 20)
	exec := b.executor(t, nil, "set: status = 'done'", "")
	// Pending ids are those not divisible by 3.
	tests := []struct {
		name     string
		from, hi int64
		limit    int
		want     []keyspace.Key
	}{
		{"limit cuts, ascending", 1, 20, 4, keys(1, 2, 4, 5)},
		{"all pending in range", 6, 20, 100, keys(7, 8, 10, 11, 13, 14, 16, 17, 19, 20)},
		{"hi is inclusive", 1, 5, 100, keys(1, 2, 4, 5)},
		{"from is inclusive", 4, 4, 100, keys(4)},
		{"only done rows", 3, 3, 100, nil},
		{"past the table", 21, 1000, 100, nil},
		{"negative keys", -100, 2, 100, keys(1, 2)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := exec.ReadFrom(context.Background(), keyspace.Int(tc.from), keyspace.Int(tc.hi), tc.limit)
			require.NoError(t, err)
			if tc.want == nil {
				require.Empty(t, got)
				return
			}
			require.Equal(t, tc.want, got)
		})
	}

	t.Run("a committed write leaves the read", func(t *testing.T) {
		t.Parallel()
		b := setup(t, 20)
		exec := b.executor(t, nil, "set: status = 'done'", "")
		_, err := exec.Write(context.Background(), keyspace.Int(1), keyspace.Int(4))
		require.NoError(t, err)
		got, err := exec.ReadFrom(context.Background(), keyspace.Int(1), keyspace.Int(20), 3)
		require.NoError(t, err)
		require.Equal(t, keys(5, 7, 8), got)
		got, err = exec.ReadAfter(context.Background(), keyspace.Int(5), keyspace.Int(20), 3)
		require.NoError(t, err)
		require.Equal(t, keys(7, 8, 10), got, "after a cursor, strictly")
	})

	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := exec.ReadFrom(ctx, keyspace.Int(1), keyspace.Int(20), 4)
		require.ErrorIs(t, err, context.Canceled)
		require.False(t, batch.IsTransient(err))
	})

	t.Run("bad pending predicate is permanent", func(t *testing.T) {
		t.Parallel()
		spec, err := jobspec.Parse([]byte("name: batch-test\ntable: " + b.table + "\nkey: id\npending: statuss IS NULL\nset: status = 'done'\n"))
		require.NoError(t, err)
		_, err = batch.NewExecutor(b.db.Pool, spec, space(t, spec)).ReadFrom(context.Background(), keyspace.Int(1), keyspace.Int(20), 4)
		require.True(t, batch.IsPermanent(err), "%v", err)
		require.Contains(t, err.Error(), "read keys [1,20]")
	})
}
