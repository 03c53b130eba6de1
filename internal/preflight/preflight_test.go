package preflight_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/preflight"
)

// checkCase is one row of the per-check tables: SQL run in a fresh schema
// (%[1]s is the schema), the job's table, key and extra YAML, and what Run
// must say.
type checkCase struct {
	name  string
	setup string
	table string // relation name inside the test schema, or a full name if it has a dot
	// unqualified passes table to the job as written, without the schema.
	unqualified bool
	key         string
	// pending replaces the job's pending predicate when set.
	pending string
	// extra is YAML appended to the job file; {table} stands for the table.
	extra string
	// wantCheck is the check that refuses; "" means Run must pass.
	wantCheck string
	// wantMsg are parts of the refusal: the thing it names and what to do.
	wantMsg []string
}

// specYAML is a job file for table and key; its write marks rows done.
func specYAML(table, key, extra string) string {
	return fmt.Sprintf("name: preflight-test\ntable: %s\nkey: %s\npending: done IS NOT TRUE\n", table, key) + extra
}

func parseSpec(t *testing.T, yaml string) *jobspec.Spec {
	t.Helper()
	spec, err := jobspec.Parse([]byte(yaml))
	require.NoError(t, err, "test job file:\n%s", yaml)
	return spec
}

// runCases runs each case in its own schema and checks Run's verdict.
func runCases(t *testing.T, tests []checkCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := ebbtest.Schema(t)
			if tc.setup != "" {
				db.Exec(t, fmt.Sprintf(tc.setup, db.Schema))
			}
			table := tc.table
			if !tc.unqualified && !strings.Contains(table, ".") {
				table = db.Table(table)
			}
			key := tc.key
			if key == "" {
				key = "id"
			}
			yaml := specYAML(table, key, strings.ReplaceAll(tc.extra, "{table}", table))
			if tc.pending != "" {
				yaml = strings.Replace(yaml, "pending: done IS NOT TRUE", "pending: "+tc.pending, 1)
			}
			spec := parseSpec(t, yaml)

			res, err := preflight.Run(context.Background(), db.Pool, spec, nil)
			if tc.wantCheck == "" {
				require.NoError(t, err)
				require.NotEmpty(t, res.KeyIndexes)
				return
			}
			require.Error(t, err)
			require.True(t, preflight.IsRefused(err), "a bad job or schema is a refusal, not an outage: %v", err)
			var rf *preflight.RefusedError
			require.True(t, errors.As(err, &rf))
			require.Equal(t, tc.wantCheck, rf.Check)
			msg := strings.ReplaceAll(err.Error(), db.Schema+".", "S.")
			for _, want := range tc.wantMsg {
				require.Contains(t, msg, want)
			}
		})
	}
}

// TestRunUnreachable: a database that does not answer is an error, never a
// refusal, so the operator is not told to fix a job that is fine.
func TestRunUnreachable(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=5")
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	spec := parseSpec(t, specYAML("public.orders", "id", "set: done = true\n"))
	_, err = preflight.Run(context.Background(), pool, spec, nil)
	require.Error(t, err)
	require.False(t, preflight.IsRefused(err), "unreachable database reported as a refusal: %v", err)
	require.Contains(t, err.Error(), "preflight 1-table")
}
