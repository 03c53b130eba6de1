package preflight_test

import "testing"

func TestCheckTable(t *testing.T) {
	t.Parallel()
	runCases(t, []checkCase{
		{
			name:      "missing table",
			table:     "nope",
			extra:     "set: done = true\n",
			wantCheck: "1-table",
			wantMsg:   []string{`table "S.nope" does not exist`, "check the table field"},
		},
		{
			name:      "missing schema",
			table:     "ebbtest_no_such_schema.orders",
			extra:     "set: done = true\n",
			wantCheck: "1-table",
			wantMsg:   []string{`table "ebbtest_no_such_schema.orders" does not exist`},
		},
		{
			// The table exists, but only in the test schema, which is not
			// on the search_path: the job must say which one it means.
			name:        "unqualified and not on search_path",
			setup:       `CREATE TABLE %[1]s.ebbtest_only_here (id bigint PRIMARY KEY, done bool)`,
			table:       "ebbtest_only_here",
			unqualified: true,
			extra:       "set: done = true\n",
			wantCheck:   "1-table",
			wantMsg:     []string{`table "ebbtest_only_here" does not exist`, "schema-qualify it"},
		},
		{
			name:  "table exists",
			setup: `CREATE TABLE %[1]s.orders (id bigint PRIMARY KEY, done bool)`,
			table: "orders",
			extra: "set: done = true\n",
		},
		{
			// Quoted identifiers: the check must look for "Orders", not
			// orders, or it would refuse a table that is there.
			name:  "mixed-case table",
			setup: `CREATE TABLE %[1]s."Orders" (id bigint PRIMARY KEY, done bool)`,
			table: "Orders",
			extra: "set: done = true\n",
		},
	})
}
