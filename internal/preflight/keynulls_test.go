package preflight_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/preflight"
)

func TestCheckKeyNulls(t *testing.T) {
	t.Parallel()
	runCases(t, []checkCase{
		{
			name:      "pending rows with a NULL key are refused",
			setup:     `CREATE TABLE %[1]s.orders (id bigint, done bool); CREATE INDEX ON %[1]s.orders (id); INSERT INTO %[1]s.orders VALUES (1, NULL), (NULL, NULL)`,
			table:     "orders",
			extra:     "set: done = true\n",
			wantCheck: "3-key-nulls",
			wantMsg:   []string{`key column "id" of S.orders is nullable and some pending rows have a NULL id`, "SET NOT NULL", "pending: (done IS NOT TRUE) AND id IS NOT NULL"},
		},
		{
			name:  "NULL keys that are not pending pass",
			setup: `CREATE TABLE %[1]s.orders (id bigint, done bool); CREATE INDEX ON %[1]s.orders (id); INSERT INTO %[1]s.orders VALUES (1, NULL), (NULL, true)`,
			table: "orders",
			extra: "set: done = true\n",
		},
		{
			// A typo in pending is the job's to fix, even when this is
			// the first check that runs it.
			name:      "a broken pending predicate on a nullable key is refused",
			setup:     `CREATE TABLE %[1]s.orders (id bigint, done bool); CREATE INDEX ON %[1]s.orders (id)`,
			table:     "orders",
			pending:   "donee IS NOT TRUE",
			extra:     "set: done = true\n",
			wantCheck: "3-key-nulls",
			wantMsg:   []string{`column "donee" does not exist`, "check the pending predicate"},
		},
		{
			name:  "a NOT NULL key passes",
			setup: `CREATE TABLE %[1]s.orders (id bigint PRIMARY KEY, done bool); INSERT INTO %[1]s.orders VALUES (1, NULL)`,
			table: "orders",
			extra: "set: done = true\n",
		},
	})
}

// A nullable key that passes still warns the operator in plan's notes; a
// NOT NULL one says nothing.
func TestCheckKeyNullsNotes(t *testing.T) {
	t.Parallel()
	db := ebbtest.Schema(t)
	db.Exec(t, fmt.Sprintf(`CREATE TABLE %[1]s.loose (id bigint, done bool); CREATE INDEX ON %[1]s.loose (id);
		CREATE TABLE %[1]s.tight (id bigint PRIMARY KEY, done bool)`, db.Schema))
	ctx := context.Background()
	res, err := preflight.Run(ctx, db.Pool, parseSpec(t, specYAML(db.Table("loose"), "id", "set: done = true\n")), nil)
	require.NoError(t, err)
	require.Contains(t, fmt.Sprint(res.Notes), `key column "id" is nullable`)
	res, err = preflight.Run(ctx, db.Pool, parseSpec(t, specYAML(db.Table("tight"), "id", "set: done = true\n")), nil)
	require.NoError(t, err)
	require.NotContains(t, fmt.Sprint(res.Notes), "nullable")
}
