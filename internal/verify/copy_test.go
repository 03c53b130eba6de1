package verify

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
)

// TestWalkCopy: a copy whose target matches its source passes, though its
// values were cast on the way (int to numeric(12,2), a composite key);
// a row missing from the target, one that differs and one without a
// source row are each named by key, and a difference that live traffic
// removes between the two looks is reported as changed.
func TestWalkCopy(t *testing.T) {
	t.Parallel()
	db := ebbtest.Schema(t)
	src, dst := db.Table("orders"), db.Table("orders_v2")
	db.Exec(t, fmt.Sprintf(`CREATE TABLE %s (tenant int NOT NULL, id int NOT NULL, amount int NOT NULL, PRIMARY KEY (tenant, id));
		INSERT INTO %[1]s SELECT g %% 4, g, g FROM generate_series(1, 8000) g;
		ANALYZE %[1]s;
		CREATE TABLE %s (tenant int NOT NULL, id int NOT NULL, price numeric(12,2), PRIMARY KEY (tenant, id));
		INSERT INTO %[2]s SELECT tenant, id, amount / 100.0 FROM %[1]s`, src, dst))
	spec, err := jobspec.Parse([]byte(fmt.Sprintf("name: c\ntable: %s\nkey: [tenant, id]\npending: \"true\"\ncopy: {to: %s, columns: {tenant: tenant, id: id, price: amount / 100.0}}\nread_batch: 1000\n", src, dst)))
	require.NoError(t, err)
	ctx := context.Background()
	space, err := keyspace.Open(ctx, db.Pool, spec.QuotedTable(), spec.Key...)
	require.NoError(t, err)
	b := &rowsBundle{db: db, spec: spec, space: space}
	ranges := b.ranges(t, 2000)

	out, err := WalkCopy(ctx, db.Pool, nil, spec, space, ranges, Options{})
	require.NoError(t, err)
	require.Equal(t, int64(8000), out.Rows)
	require.Zero(t, out.Wrong, "%+v", out.Findings)

	db.Exec(t, "DELETE FROM "+dst+" WHERE (tenant, id) = (1, 4001)")
	db.Exec(t, "UPDATE "+dst+" SET price = 0 WHERE (tenant, id) = (2, 6)")
	db.Exec(t, "INSERT INTO "+dst+" VALUES (3, 9999999, 1)") // past the job's last key (3, 7999): not the job's
	db.Exec(t, "INSERT INTO "+dst+" VALUES (0, 5, 1)")       // no source row: 5 belongs to tenant 1
	db.Exec(t, "UPDATE "+dst+" SET price = -1 WHERE (tenant, id) = (3, 3)")
	fixed := false
	opt := Options{beforeRecheck: func(wrong []keyspace.Key) {
		if slices.ContainsFunc(wrong, keyspace.NewKey("3", "3").Equal) {
			fixed = true
			db.Exec(t, "UPDATE "+dst+" SET price = 0.03 WHERE (tenant, id) = (3, 3)")
		}
	}}
	out, err = WalkCopy(ctx, db.Pool, nil, spec, space, ranges, opt)
	require.NoError(t, err)
	require.Equal(t, int64(1), out.Missing)
	require.Equal(t, int64(1), out.Differing)
	require.Equal(t, int64(1), out.Extra, "the row past the job's last key is not the job's")
	require.ElementsMatch(t, []keyspace.Key{keyspace.NewKey("1", "4001"), keyspace.NewKey("2", "6"), keyspace.NewKey("0", "5")}, out.DiffKeys)
	require.True(t, fixed)
	require.Equal(t, []keyspace.Key{keyspace.NewKey("3", "3")}, out.ChangedKeys)
}
