package probe

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/jobspec"
)

func TestSQLProbe(t *testing.T) {
	t.Parallel()
	db := ebbtest.Schema(t)
	tbl := db.Table("jobs")
	db.Exec(t, "CREATE TABLE "+tbl+" (id int PRIMARY KEY, v int)")
	db.Exec(t, "INSERT INTO "+tbl+" VALUES (1, 0), (2, 0), (3, 0)")

	tests := []struct {
		name    string
		sql     string
		want    float64
		wantErr string
	}{
		{name: "count", sql: "SELECT count(*) FROM " + tbl, want: 3},
		{name: "int", sql: "SELECT 7::int", want: 7},
		{name: "smallint", sql: "SELECT 7::smallint", want: 7},
		{name: "float", sql: "SELECT 0.25::float8", want: 0.25},
		{name: "real", sql: "SELECT 0.5::real", want: 0.5},
		{name: "numeric", sql: "SELECT 1.5::numeric", want: 1.5},
		{name: "two columns", sql: "SELECT 1, 2", wantErr: "returned 2 columns"},
		{name: "zero rows", sql: "SELECT 1 FROM " + tbl + " WHERE false", wantErr: "returned no rows"},
		{name: "two rows", sql: "SELECT id FROM " + tbl, wantErr: "more than one row"},
		{name: "NULL", sql: "SELECT max(v) FROM " + tbl + " WHERE false", wantErr: `column "max" is NULL`},
		{name: "text", sql: "SELECT 'busy'", wantErr: "is text, not a number"},
		{name: "digits as text", sql: "SELECT '42'::text", wantErr: "is text, not a number"},
		{name: "boolean", sql: "SELECT true", wantErr: "is bool, not a number"},
		{name: "numeric NaN", sql: "SELECT 'NaN'::numeric", wantErr: "not a number"},
		{name: "update", sql: "UPDATE " + tbl + " SET v = 1", wantErr: "read-only transaction"},
		{name: "update returning", sql: "UPDATE " + tbl + " SET v = 1 WHERE id = 1 RETURNING v", wantErr: "read-only transaction"},
		{name: "escape the transaction", sql: "COMMIT; UPDATE " + tbl + " SET v = 1", wantErr: "multiple commands"},
		{name: "syntax error", sql: "SELEC 1", wantErr: "syntax error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rule := jobspec.Rule{Name: "queue_depth", SQL: tc.sql, PauseAbove: jobspec.Abs(100)}
			r := readOne(t, sampler(t, db, SamplerConfig{}, rule), rule.Name)
			if tc.wantErr != "" {
				require.ErrorContains(t, r.Err, "rule queue_depth")
				require.ErrorContains(t, r.Err, tc.wantErr)
				return
			}
			require.NoError(t, r.Err)
			require.InDelta(t, tc.want, r.Value, 1e-9)
		})
	}
	require.Zero(t, db.Count(t, "SELECT count(*) FROM "+tbl+" WHERE v <> 0"), "no sql rule may write")
}

func TestSQLProbeTimesOut(t *testing.T) {
	t.Parallel()
	db := ebbtest.Schema(t)
	rule := jobspec.Rule{Name: "slow", SQL: "SELECT 1 FROM pg_sleep(30)", PauseAbove: jobspec.Abs(1)}
	s := sampler(t, db, SamplerConfig{ProbeTimeout: 200 * time.Millisecond}, rule)
	r := readOne(t, s, rule.Name)
	require.ErrorContains(t, r.Err, "rule slow")

	// The timed-out probe left the pool usable.
	ok := jobspec.Rule{Name: "ok", SQL: "SELECT 1", PauseAbove: jobspec.Abs(1)}
	r = readOne(t, sampler(t, db, SamplerConfig{}, ok), ok.Name)
	require.NoError(t, r.Err)
}
