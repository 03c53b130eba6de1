package runner_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/keyspace"
)

// shapeCase is one key shape walked end to end: a table, its seed, the
// job file's key lines and what the slicing must give.
type shapeCase struct {
	name string
	// table creates orders (%[1]s) with legacy_state, status and hits and
	// seeds it, all pending.
	table string
	// cols are the key columns as ebb walks them (with a tie-breaker).
	cols  []string
	extra string
	// ranges is the exact range count a window gives; minRanges a floor
	// for count slicing.
	ranges, minRanges int64
}

var shapeCases = []shapeCase{
	{
		// One tenant holds 90 % of the rows: the sample puts most split
		// points inside it.
		name: "composite with a skewed tenant",
		table: `CREATE TABLE %[1]s (tenant_id int NOT NULL, id bigint NOT NULL, legacy_state int NOT NULL,
			status text, hits int NOT NULL DEFAULT 0, PRIMARY KEY (tenant_id, id));
			INSERT INTO %[1]s (tenant_id, id, legacy_state) SELECT 7, g, g %% 7 FROM generate_series(1, 9000) g;
			INSERT INTO %[1]s (tenant_id, id, legacy_state) SELECT t, g, g %% 7 FROM generate_series(1, 10) t, generate_series(1, 100) g WHERE t <> 7`,
		cols:      []string{"tenant_id", "id"},
		extra:     "key: [tenant_id, id]\ntask_span: 1000\n",
		minRanges: 5,
	},
	{
		// 3,000 rows share one microsecond: the primary key breaks the
		// ties, so batches of 100 walk through them.
		name: "timestamptz with thousands of ties",
		table: `CREATE TABLE %[1]s (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, legacy_state int NOT NULL,
			status text, hits int NOT NULL DEFAULT 0);
			CREATE INDEX ON %[1]s (created_at);
			INSERT INTO %[1]s (id, created_at, legacy_state) SELECT g, '2024-03-01 12:00:00.000001+00', g %% 7 FROM generate_series(1, 3000) g;
			INSERT INTO %[1]s (id, created_at, legacy_state) SELECT g, '2024-03-01 12:00:00+00'::timestamptz + g * interval '7 seconds 3 microseconds', g %% 7 FROM generate_series(3001, 6000) g`,
		cols:      []string{"created_at", "id"},
		extra:     "key: created_at\ntask_span: 1000\nbatch: 100\n",
		minRanges: 3,
	},
	{
		// Twenty days of 300 rows each, one range per day.
		name: "date windows",
		table: `CREATE TABLE %[1]s (id bigint PRIMARY KEY, day date NOT NULL, legacy_state int NOT NULL,
			status text, hits int NOT NULL DEFAULT 0);
			CREATE INDEX ON %[1]s (day, id);
			INSERT INTO %[1]s (id, day, legacy_state) SELECT g, date '2024-02-20' + (g %% 20), g %% 7 FROM generate_series(1, 6000) g`,
		cols:   []string{"day", "id"},
		extra:  "key: day\nwindow: 1d\n",
		ranges: 20,
	},
	{
		name: "numeric with a scale",
		table: `CREATE TABLE %[1]s (id numeric(12,3) PRIMARY KEY, legacy_state int NOT NULL,
			status text, hits int NOT NULL DEFAULT 0);
			INSERT INTO %[1]s (id, legacy_state) SELECT (g::numeric / 1000)::numeric(12,3), g %% 7 FROM generate_series(1, 5000) g`,
		cols:      []string{"id"},
		extra:     "task_span: 1000\n",
		minRanges: 3,
	},
	{
		// uuid v7: a 48-bit millisecond clock, then random bits.
		name: "time-ordered uuid",
		table: `CREATE TABLE %[1]s (id uuid PRIMARY KEY, legacy_state int NOT NULL,
			status text, hits int NOT NULL DEFAULT 0);
			INSERT INTO %[1]s (id, legacy_state)
			SELECT (lpad(to_hex(1700000000000 + g * 3), 12, '0') || '7' || substr(md5(g::text), 1, 3) || '8' || substr(md5(g::text), 4, 15))::uuid, g %% 7
			FROM generate_series(1, 5000) g`,
		cols:      []string{"id"},
		extra:     "task_span: 1000\n",
		minRanges: 3,
	},
}

// TestBackfillShapes: for every key shape, three workers fill every
// pending row exactly once (hits ends at 1 everywhere), the slicing cuts
// the key into the expected ranges, verify passes, and a row set back to
// pending is named by its key's natural text.
func TestBackfillShapes(t *testing.T) {
	t.Parallel()
	for _, tc := range shapeCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			orders := b.db.Table("orders")
			b.db.Exec(t, fmt.Sprintf(tc.table, orders))
			b.db.Exec(t, "ANALYZE "+orders)
			rows := b.db.Count(t, "SELECT count(*) FROM "+orders)
			spec := b.spec(tc.extra + "guard: {rules: []}\ncheck: status = 's' || legacy_state AND hits = 1\n")
			plan, err := control.Plan(context.Background(), b.db.Pool, spec, nil)
			require.NoError(t, err)
			require.Equal(t, tc.cols, plan.Key)
			require.Contains(t, plan.ReadPlan, "Index", "the read seeks the key's index")
			require.Contains(t, plan.WritePlan, "Index", "the write seeks the key's index")
			require.NotContains(t, plan.ReadPlan+plan.WritePlan, "Seq Scan")
			res := b.start(spec)
			if tc.ranges > 0 {
				require.Equal(t, tc.ranges, res.Ranges)
			} else {
				require.GreaterOrEqual(t, res.Ranges, tc.minRanges)
			}
			require.Equal(t, b.keyOf(tc.cols, 0), res.From)
			require.Equal(t, b.keyOf(tc.cols, int(rows)-1), res.To)
			for range 3 {
				b.worker(workerOpts{concurrency: 1})
			}
			s := b.waitState(control.StateDone)
			require.Equal(t, rows, s.RowsDone)
			b.assertFilledOnce()

			ctx := context.Background()
			r, err := b.ctl.Verify(ctx, b.db.Pool, b.job, control.VerifyOptions{ChunkRows: 1000})
			require.NoError(t, err)
			require.True(t, r.OK, "%v", r.Problems)
			mid := b.keyOf(tc.cols, int(rows)/2)
			b.db.Exec(t, fmt.Sprintf("UPDATE %s SET status = NULL WHERE (%s)::text = $1", orders, rowText(tc.cols)), mid.String())
			r, err = b.ctl.Verify(ctx, b.db.Pool, b.job, control.VerifyOptions{ChunkRows: 1000})
			require.ErrorIs(t, err, control.ErrVerifyFailed)
			require.Equal(t, []keyspace.Key{mid}, r.PendingKeys)
		})
	}
}

// TestResumeShapes: a range whose checkpoint is a composite or tie-broken
// time key resumes strictly after it: rows up to the cursor are left as
// they are, every row after it is written once.
func TestResumeShapes(t *testing.T) {
	t.Parallel()
	for _, tc := range shapeCases[:2] {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			orders := b.db.Table("orders")
			b.db.Exec(t, fmt.Sprintf(tc.table, orders))
			rows := int(b.db.Count(t, "SELECT count(*) FROM "+orders))
			res := b.start(b.spec(strings.Replace(tc.extra, "task_span: 1000", fmt.Sprintf("task_span: %d", rows), 1) + "guard: {rules: []}\n"))
			require.Equal(t, int64(1), res.Ranges)
			// The cursor sits inside the run of ties (or the big tenant).
			cursor := b.keyOf(tc.cols, 1234)
			cols := strings.Join(tc.cols, ", ")
			b.db.Exec(t, fmt.Sprintf("UPDATE %s SET status = 'before' WHERE (%s) <= (SELECT %s FROM %s ORDER BY %s OFFSET 1234 LIMIT 1)", orders, cols, cols, orders, cols))
			require.NoError(t, b.redis.Client.HSet(context.Background(), b.ledger.CursorKey(b.job), "0", cursor.Encode()).Err())
			b.worker(workerOpts{concurrency: 2})
			s := b.waitState(control.StateDone)
			require.Equal(t, int64(rows-1235), s.RowsDone)
			require.Equal(t, int64(1235), b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE status = 'before' AND hits = 0"), "nothing up to the cursor redone")
			require.Equal(t, int64(rows-1235), b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE status <> 'before' AND hits = 1"), "everything after it done once")
		})
	}
}

// keyOf is the key of the n-th row (from 0) in the order of cols, read by
// the database as the text ebb keeps.
func (b *testBundle) keyOf(cols []string, n int) keyspace.Key {
	b.t.Helper()
	vals := make([]string, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	// Named apart, or ORDER BY would sort by the text.
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = fmt.Sprintf("%s::text AS k%d", c, i)
	}
	require.NoError(b.t, b.db.Pool.QueryRow(context.Background(),
		fmt.Sprintf("SELECT %s FROM %s ORDER BY %s OFFSET %d LIMIT 1", strings.Join(sel, ", "), b.db.Table("orders"), strings.Join(cols, ", "), n)).Scan(ptrs...))
	return keyspace.NewKey(vals...)
}

// rowText is the SQL text of a key as Key.String writes it: the value for
// one column, "(a, b)" for several.
func rowText(cols []string) string {
	if len(cols) == 1 {
		return cols[0] + "::text"
	}
	return "'(' || " + strings.Join(cols, "::text || ', ' || ") + "::text || ')'"
}

// TestSplitCompositeOnRepeatedTimeouts: a composite range that keeps
// timing out at one locked row is split at the middle key the index names
// (no arithmetic exists for it), the second half starting strictly after
// it; the halves are requeued with their exclusive bound and the rest
// completes; a start after the lock is gone finishes the locked half.
func TestSplitCompositeOnRepeatedTimeouts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.db.Exec(t, fmt.Sprintf(shapeCases[0].table, b.db.Table("orders")))
	b.splitAtLock(t, "tenant_id = 7 AND id = 4000", "key: [tenant_id, id]\ntask_span: 100000", 1, func(splits map[int64]keyspace.Range) {
		after := 0
		for _, r := range splits {
			if r.After {
				after++
			}
		}
		require.Positive(t, after, "second halves keep their exclusive lower bound in the ledger")
	})
}

// splitAtLock starts a job whose one row matching lock is held by another
// transaction, with one attempt per batch and a 20 ms lock timeout: the
// range holding it (of ranges, the slicing's count) is split until only
// the locked key's range fails and every other row is done. check then
// looks at the ledger's splits; once the lock is released a start
// requeues the failed range and the job finishes, every row written once.
func (b *testBundle) splitAtLock(t *testing.T, lock, keyLines string, ranges int64, check func(map[int64]keyspace.Range)) {
	t.Helper()
	ctx := context.Background()
	orders := b.db.Table("orders")
	holder := lockRows(t, b.db.Pool, orders, lock)
	spec := b.spec(keyLines + `
batch: {size: 100, min: 1, max: 100}
retries: 1
timeouts: {lock: 20ms, statement: 5s}
guard: {rules: []}`)
	require.Equal(t, ranges, b.start(spec).Ranges)
	b.worker(workerOpts{concurrency: 2})
	s := b.waitState(control.StateFailed)
	require.Equal(t, int64(1), s.RangesFailed, "only the locked key's range fails")
	require.Greater(t, s.RangesTotal, ranges+1, "the range was split")
	require.Equal(t, int64(1), b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE status IS NULL"), "every other row is done")
	splits, err := b.ledger.Splits(ctx, b.job)
	require.NoError(t, err)
	require.NotEmpty(t, splits)
	check(splits)

	require.NoError(t, holder.Rollback(ctx))
	res := b.start(spec)
	require.Equal(t, 1, res.Requeued)
	b.waitState(control.StateDone)
	b.assertFilledOnce()
}

// TestStartRefusesChangedKey: a job started with key: id and started again
// with key: [tenant_id, id] is refused with the way out, not left with
// ranges of the old shape that every worker would refuse one by one.
func TestStartRefusesChangedKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	orders := b.db.Table("orders")
	b.db.Exec(t, fmt.Sprintf(`CREATE TABLE %[1]s (tenant_id int NOT NULL, id bigint PRIMARY KEY, legacy_state int NOT NULL, status text, hits int NOT NULL DEFAULT 0);
		CREATE UNIQUE INDEX ON %[1]s (tenant_id, id);
		INSERT INTO %[1]s (tenant_id, id, legacy_state) SELECT g %% 3, g, 1 FROM generate_series(1, 100) g`, orders))
	b.start(b.spec("key: id\nguard: {rules: []}\n"))
	_, err := b.ctl.Start(context.Background(), b.db.Pool, b.spec("key: [tenant_id, id]\nguard: {rules: []}\n"), b.redis.Queue)
	require.ErrorIs(t, err, control.ErrKeyChanged)
	require.ErrorContains(t, err, "enqueuer cleanup "+b.job)
}
