package batch_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/batch"
	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
)

// TestSkewedCompositeWriteSeeksIndex: PostgreSQL estimates a row value
// from its first column alone, so a batch of 100 keys inside a tenant
// holding 90 % of the rows looks like 90 % of the table, and the plain
// UPDATE plans a sequential scan. A batch's write must still seek the
// primary key: the table's statistics show index scans and no sequential
// scan once the write has run (and the plain statement, EXPLAINed here,
// shows why the guard is needed).
func TestSkewedCompositeWriteSeeksIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := ebbtest.Schema(t)
	table := db.Table("orders")
	// Set up on one connection and flush its statistics (ANALYZE may count
	// a scan), so the counts read below hold nothing but the write's.
	conn, err := db.Pool.Acquire(ctx)
	require.NoError(t, err)
	for _, q := range []string{
		`CREATE TABLE ` + table + ` (tenant_id int, id bigint, status text, PRIMARY KEY (tenant_id, id))`,
		`INSERT INTO ` + table + ` SELECT CASE WHEN g % 10 = 0 THEN g % 97 ELSE 42 END, g FROM generate_series(1, 100000) g`,
		`ANALYZE ` + table,
		`SELECT pg_stat_force_next_flush()`,
		`SELECT 1`,
	} {
		_, err := conn.Exec(ctx, q)
		require.NoError(t, err, q)
	}
	conn.Release()
	spec, err := jobspec.Parse([]byte("name: skew\ntable: " + table + "\nkey: [tenant_id, id]\npending: status IS NULL\nset: status = 'done'\n"))
	require.NoError(t, err)
	sp, err := keyspace.Open(ctx, db.Pool, table, spec.Key...)
	require.NoError(t, err)
	lo, hi := keyspace.NewKey("42", "50001"), keyspace.NewKey("42", "50111")
	args, err := sp.Args(lo, hi)
	require.NoError(t, err)

	rows, err := db.Pool.Query(ctx, "EXPLAIN "+batch.Build(spec, sp).Write, args...)
	require.NoError(t, err)
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Contains(t, strings.Join(plan, "\n"), "Seq Scan", "the planner, left alone, scans the table for this batch: the test needs that to mean anything")

	seq, idx := scans(t, db, table)
	n, err := batch.NewExecutor(db.Pool, spec, sp).Write(ctx, lo, hi)
	require.NoError(t, err)
	require.Equal(t, int64(100), n)
	ebbtest.Eventually(t, "the write's scans are counted", func() bool {
		s, i := scans(t, db, table)
		return i > idx || s > seq
	})
	after, _ := scans(t, db, table)
	require.Equal(t, seq, after, "the batch's write scanned the table")
}

// scans reads the table's sequential and index scan counts.
func scans(t *testing.T, db *ebbtest.DB, table string) (seq, idx int64) {
	t.Helper()
	require.NoError(t, db.Pool.QueryRow(context.Background(),
		"SELECT coalesce(seq_scan, 0), coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relid = to_regclass($1)", table).Scan(&seq, &idx))
	return seq, idx
}
