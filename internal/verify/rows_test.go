package verify

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
)

// rowsBundle is a finished job's table: every row holds the value the job
// computes (total = amount * 100), keyed by key.
type rowsBundle struct {
	db    *ebbtest.DB
	spec  *jobspec.Spec
	space keyspace.Space
}

func setupRows(t *testing.T, key, keyDDL, keyRows string, n int) *rowsBundle {
	t.Helper()
	db := ebbtest.Schema(t)
	table := db.Table("orders")
	db.Exec(t, fmt.Sprintf("CREATE TABLE %s (%s, amount int NOT NULL, total int)", table, keyDDL))
	db.Exec(t, fmt.Sprintf("INSERT INTO %s SELECT %s, g %% 97, (g %% 97) * 100 FROM generate_series(1, %d) g", table, keyRows, n))
	db.Exec(t, "ANALYZE "+table)
	spec, err := jobspec.Parse([]byte(fmt.Sprintf("name: v\ntable: %s\nkey: %s\npending: total IS NULL\nset: total = amount * 100\ncheck: total = amount * 100\nread_batch: 1000\n", table, key)))
	require.NoError(t, err)
	space, err := keyspace.Open(context.Background(), db.Pool, spec.QuotedTable(), spec.Key...)
	require.NoError(t, err)
	return &rowsBundle{db: db, spec: spec, space: space}
}

// ranges cuts the table the way start would.
func (b *rowsBundle) ranges(t *testing.T, span int64) []keyspace.Range {
	t.Helper()
	ctx := context.Background()
	lo, hi, ok, err := b.space.Extremes(ctx, b.db.Pool, b.spec.QuotedTable())
	require.NoError(t, err)
	require.True(t, ok)
	sl, err := b.space.SliceTable(ctx, b.db.Pool, b.spec.QuotedTable(), lo, hi, span, keyspace.Window{})
	require.NoError(t, err)
	var out []keyspace.Range
	for i := range sl.Ranges() {
		r, err := sl.Range(i)
		require.NoError(t, err)
		out = append(out, r)
	}
	return out
}

// TestWalkRowsFindsEveryWrongRow: every row is read, for every key shape:
// one wrong row anywhere fails the walk and is named by key and range,
// a NULL check counts as failing, and a row that fails the check without
// being pending is told apart (the job's statement would not rewrite it).
func TestWalkRowsFindsEveryWrongRow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, key, ddl, rows string
		// keyOf is the key of row g, as the walk names it.
		keyOf func(g int) keyspace.Key
	}{
		{"int", "id", "id bigint PRIMARY KEY", "g", func(g int) keyspace.Key { return keyspace.Int(int64(g)) }},
		{"composite", "[tenant, id]", "tenant int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant, id)", "g % 3, g",
			func(g int) keyspace.Key { return keyspace.NewKey(fmt.Sprint(g%3), fmt.Sprint(g)) }},
		{"text", "code", "code text PRIMARY KEY", "lpad(g::text, 8, '0')", func(g int) keyspace.Key { return keyspace.NewKey(fmt.Sprintf("%08d", g)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupRows(t, tc.key, tc.ddl, tc.rows, 12_000)
			ctx := context.Background()
			ranges := b.ranges(t, 3000)
			out, err := WalkRows(ctx, b.db.Pool, b.spec, b.space, ranges, Options{})
			require.NoError(t, err)
			require.Equal(t, int64(12_000), out.Rows, "every row read once")
			require.Zero(t, out.Wrong)
			require.Empty(t, out.Findings)

			table := b.db.Table("orders")
			b.db.Exec(t, "UPDATE "+table+" SET total = -1 FROM generate_series(7777, 7777) g WHERE ("+rowsKey(tc.key)+") = ("+tc.rows+")")
			b.db.Exec(t, "UPDATE "+table+" SET total = NULL FROM generate_series(4242, 4242) g WHERE ("+rowsKey(tc.key)+") = ("+tc.rows+")")
			out, err = WalkRows(ctx, b.db.Pool, b.spec, b.space, ranges, Options{})
			require.NoError(t, err)
			require.Equal(t, int64(2), out.Wrong)
			require.Equal(t, int64(1), out.Pending, "the NULL row")
			require.Equal(t, int64(2), out.Failing, "the corrupted row, and the NULL one: NULL fails a check")
			require.Equal(t, int64(1), out.Unselected, "the corrupted row is not pending")
			require.Equal(t, []keyspace.Key{tc.keyOf(4242)}, out.PendingKeys)
			require.ElementsMatch(t, []keyspace.Key{tc.keyOf(4242), tc.keyOf(7777)}, out.FailingKeys)
			var named []keyspace.Key
			for _, f := range out.Findings {
				named = append(named, f.Keys...)
				for _, k := range f.Keys {
					require.True(t, inRange(t, b, f.Range, k), "key %s named in range %s, which does not hold it", k, f.Range)
				}
			}
			require.ElementsMatch(t, []keyspace.Key{tc.keyOf(4242), tc.keyOf(7777)}, named)
		})
	}
}

// rowsKey is the key's columns as a row value to compare with.
func rowsKey(key string) string {
	if key == "[tenant, id]" {
		return "tenant, id"
	}
	return key
}

// inRange asks PostgreSQL whether r holds k.
func inRange(t *testing.T, b *rowsBundle, r keyspace.Range, k keyspace.Key) bool {
	args, err := b.space.Args(r.Lo, r.Hi, k)
	require.NoError(t, err)
	w := b.space.Width()
	cols := b.space.Columns()
	probe := fmt.Sprintf("SELECT count(*) FROM %s WHERE %s AND (%s) = (%s)", b.spec.QuotedTable(), b.space.Of(r, 1), cols, placeholders(2*w+1, w))
	var n int64
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), probe, args...).Scan(&n))
	return n == 1
}

func placeholders(first, n int) string {
	s := ""
	for i := range n {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("$%d", first+i)
	}
	return s
}

// TestWalkRowsChangedDuringVerify: a row wrong at the first look and
// fixed before the second (live traffic between the two) is reported as
// changed during verify, not as wrong; a row still wrong at the second
// look counts.
func TestWalkRowsChangedDuringVerify(t *testing.T) {
	t.Parallel()
	b := setupRows(t, "id", "id bigint PRIMARY KEY", "g", 5000)
	table := b.db.Table("orders")
	b.db.Exec(t, "UPDATE "+table+" SET total = NULL WHERE id IN (100, 200)")
	fixed := false
	opt := Options{beforeRecheck: func([]keyspace.Key) {
		if !fixed {
			fixed = true
			b.db.Exec(t, "UPDATE "+table+" SET total = amount * 100 WHERE id = 100")
		}
	}}
	out, err := WalkRows(context.Background(), b.db.Pool, b.spec, b.space, b.ranges(t, 5000), opt)
	require.NoError(t, err)
	require.True(t, fixed)
	require.Equal(t, int64(1), out.Changed)
	require.Equal(t, []keyspace.Key{keyspace.Int(100)}, out.ChangedKeys)
	require.Equal(t, int64(1), out.Wrong)
	require.Equal(t, []keyspace.Key{keyspace.Int(200)}, out.PendingKeys)
}

// TestWalkRowsPaces: the walk hands every chunk's rows to PaceFunc, so a
// job's rate bounds verify too.
func TestWalkRowsPaces(t *testing.T) {
	t.Parallel()
	b := setupRows(t, "id", "id bigint PRIMARY KEY", "g", 5000)
	var paced int64
	var calls int
	_, err := WalkRows(context.Background(), b.db.Pool, b.spec, b.space, b.ranges(t, 2500), Options{ChunkRows: 1000,
		PaceFunc: func(_ context.Context, rows int64, _ time.Duration) error {
			paced += rows
			calls++
			return nil
		}})
	require.NoError(t, err)
	// Two ranges of 2,500 rows, each read as 1,000 + 1,000 + 500.
	require.Equal(t, int64(4500), paced, "every chunk but the walk's last is paced")
	require.Equal(t, 5, calls)
}
