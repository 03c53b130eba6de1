package preflight_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/preflight"
)

// bigTable has 20k analyzed rows: large enough that the planner seeks the
// index for a batch on its own.
const bigTable = `CREATE TABLE %[1]s.orders (id bigint PRIMARY KEY, other int, done bool);
INSERT INTO %[1]s.orders SELECT g, g %% 1000, NULL FROM generate_series(1, 20000) g;
ANALYZE %[1]s.orders`

// smallTable has 100 analyzed rows: the planner rightly scans it whole.
const smallTable = `CREATE TABLE %[1]s.orders (id bigint PRIMARY KEY, other int, done bool);
INSERT INTO %[1]s.orders SELECT g, g, NULL FROM generate_series(1, 100) g;
ANALYZE %[1]s.orders`

// bigUUIDTable is bigTable keyed by random uuids.
const bigUUIDTable = `CREATE TABLE %[1]s.orders (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), other int, done bool);
INSERT INTO %[1]s.orders (other) SELECT g %% 1000 FROM generate_series(1, 20000) g;
ANALYZE %[1]s.orders`

func TestCheckExplain(t *testing.T) {
	t.Parallel()
	runCases(t, []checkCase{
		{
			// The plans name each partition's index, not the parent's.
			name: "partitioned table",
			setup: `CREATE TABLE %[1]s.orders (id bigint PRIMARY KEY, done bool) PARTITION BY RANGE (id);
				CREATE TABLE %[1]s.orders_1 PARTITION OF %[1]s.orders FOR VALUES FROM (0) TO (15000);
				CREATE TABLE %[1]s.orders_2 PARTITION OF %[1]s.orders FOR VALUES FROM (15000) TO (30000);
				INSERT INTO %[1]s.orders SELECT g, false FROM generate_series(1, 29999) g;
				ANALYZE %[1]s.orders;`,
			table: "orders",
			extra: "set: done = true\n",
		},
		{
			name:  "set write on a large table",
			setup: bigTable,
			table: "orders",
			extra: "set: done = true\n",
		},
		{
			name:  "sql write bounded by the key on a large table",
			setup: bigTable,
			table: "orders",
			extra: "sql: UPDATE {table} SET done = true WHERE id BETWEEN $1 AND $2 AND done IS NOT TRUE\n",
		},
		{
			// The bounds land on an unindexed column: every batch would
			// scan all 20k rows.
			name:      "sql write bounded by another column on a large table",
			setup:     bigTable,
			table:     "orders",
			extra:     "sql: UPDATE {table} SET done = true WHERE other BETWEEN $1 AND $2 AND done IS NOT TRUE\n",
			wantCheck: "4-explain",
			wantMsg:   []string{"the write statement would not use an index on id", "orders_pkey", "fix the pending predicate or the write", "Seq Scan"},
		},
		{
			// Disabling sequential scans cannot make an index usable that
			// the statement does not bound.
			name:      "sql write bounded by another column on a small table",
			setup:     smallTable,
			table:     "orders",
			extra:     "sql: UPDATE {table} SET done = true WHERE other BETWEEN $1 AND $2 AND done IS NOT TRUE\n",
			wantCheck: "4-explain",
			wantMsg:   []string{"the write statement would not use an index on id"},
		},
		{
			// The sample bounds are the share of the 128-bit space that
			// read_batch and batch.max rows take: index range scans.
			name:  "set write on a large uuid table",
			setup: bigUUIDTable,
			table: "orders",
			extra: "set: done = true\n",
		},
		{
			name:  "sql write bounded by a uuid key",
			setup: bigUUIDTable,
			table: "orders",
			extra: "sql: UPDATE {table} SET done = true WHERE id BETWEEN $1 AND $2 AND done IS NOT TRUE\n",
		},
		{
			name:  "sql write with explicit uuid casts",
			setup: bigUUIDTable,
			table: "orders",
			extra: "sql: UPDATE {table} SET done = true WHERE id >= $1::uuid AND id <= $2::uuid AND done IS NOT TRUE\n",
		},
		{
			name:      "uuid write bounded by a cast of the key",
			setup:     bigUUIDTable,
			table:     "orders",
			extra:     "sql: UPDATE {table} SET done = true WHERE id::text BETWEEN $1 AND $2 AND done IS NOT TRUE\n",
			wantCheck: "4-explain",
			wantMsg:   []string{"the write statement would not use an index on id", "Seq Scan"},
		},
		{
			// The first key is in a tenant holding 90 % of the rows: the
			// planner estimates the row value from tenant_id alone and
			// would scan; batches run with enable_seqscan off.
			name: "composite key skewed at its first key",
			setup: `CREATE TABLE %[1]s.orders (tenant_id int, id bigint, done bool, PRIMARY KEY (tenant_id, id));
				INSERT INTO %[1]s.orders SELECT CASE WHEN g %% 10 = 0 THEN 2 + g %% 97 ELSE 1 END, g FROM generate_series(1, 50000) g;
				ANALYZE %[1]s.orders`,
			table: "orders",
			key:   "[tenant_id, id]",
			extra: "set: done = true\n",
		},
		{
			name:      "write that does not plan",
			setup:     bigTable,
			table:     "orders",
			extra:     "sql: UPDATE {table} SET no_such_column = 1 WHERE id BETWEEN $1 AND $2\n",
			wantCheck: "4-explain",
			wantMsg:   []string{"EXPLAIN of the write statement failed", `column "no_such_column"`, "statement: UPDATE"},
		},
	})
}

// TestCheckExplainPending: the read statement carries the operator's pending
// predicate, and the check plans it before any row is read.
func TestCheckExplainPending(t *testing.T) {
	t.Parallel()
	db := ebbtest.Schema(t)
	db.Exec(t, `CREATE TABLE `+db.Table("orders")+` (id bigint PRIMARY KEY, done bool)`)
	spec := parseSpec(t, "name: preflight-test\ntable: "+db.Table("orders")+"\nkey: id\npending: statuss IS NULL\nset: done = true\n")

	_, err := preflight.Run(context.Background(), db.Pool, spec, nil)
	require.True(t, preflight.IsRefused(err), "%v", err)
	require.ErrorContains(t, err, "EXPLAIN of the read statement failed")
	require.ErrorContains(t, err, `column "statuss" does not exist`)
}

// TestCheckExplainSmallTable: on a table small enough that the planner
// prefers a sequential scan, a job whose statements can seek the key index
// passes, with a note saying why the plan shows a scan.
func TestCheckExplainSmallTable(t *testing.T) {
	t.Parallel()
	db := ebbtest.Schema(t)
	db.Exec(t, fmt.Sprintf(smallTable, db.Schema))
	spec := parseSpec(t, specYAML(db.Table("orders"), "id", "set: done = true\n"))

	res, err := preflight.Run(context.Background(), db.Pool, spec, nil)
	require.NoError(t, err)
	require.NotEmpty(t, res.Notes)
	require.Contains(t, res.Notes[0], "can use the key index")
}
