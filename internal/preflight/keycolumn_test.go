package preflight_test

import "testing"

func TestCheckKeyColumn(t *testing.T) {
	t.Parallel()
	runCases(t, []checkCase{
		{
			name:      "missing key column",
			setup:     `CREATE TABLE %[1]s.orders (id bigint PRIMARY KEY, done bool)`,
			table:     "orders",
			key:       "order_id",
			extra:     "set: done = true\n",
			wantCheck: "2-key-column",
			wantMsg:   []string{`key column "order_id" does not exist in S.orders`, "check the key field"},
		},
		{
			name:      "dropped key column",
			setup:     `CREATE TABLE %[1]s.orders (id bigint PRIMARY KEY, old_id bigint, done bool); ALTER TABLE %[1]s.orders DROP COLUMN old_id`,
			table:     "orders",
			key:       "old_id",
			extra:     "set: done = true\n",
			wantCheck: "2-key-column",
			wantMsg:   []string{`key column "old_id" does not exist`},
		},
		{
			name:  "text key",
			setup: `CREATE TABLE %[1]s.orders (code text COLLATE "en-US-x-icu" PRIMARY KEY, done bool)`,
			table: "orders",
			key:   "code",
			extra: "set: done = true\n",
		},
		{
			name:  "varchar key",
			setup: `CREATE TABLE %[1]s.orders (code varchar(20) PRIMARY KEY, done bool)`,
			table: "orders",
			key:   "code",
			extra: "set: done = true\n",
		},
		{
			name:      "bytea key",
			setup:     `CREATE TABLE %[1]s.orders (code bytea PRIMARY KEY, done bool)`,
			table:     "orders",
			key:       "code",
			extra:     "set: done = true\n",
			wantCheck: "2-key-column",
			wantMsg:   []string{`key column "code" of S.orders is bytea`, "must be smallint, integer, bigint, numeric, uuid, text, varchar, date, timestamp or timestamptz"},
		},
		{
			name:  "uuid key",
			setup: `CREATE TABLE %[1]s.orders (id uuid PRIMARY KEY, done bool)`,
			table: "orders",
			extra: "set: done = true\n",
		},
		{
			// The job file's fixed bounds are integers.
			name:      "uuid key with a fixed range",
			setup:     `CREATE TABLE %[1]s.orders (id uuid PRIMARY KEY, done bool)`,
			table:     "orders",
			extra:     "set: done = true\nrange: {from: 1, to: auto}\n",
			wantCheck: "2-key-column",
			wantMsg:   []string{`range.from 1 is not a key of S.orders's uuid key "id"`, "use auto"},
		},
		{
			name:      "float key",
			setup:     `CREATE TABLE %[1]s.orders (id double precision PRIMARY KEY, done bool)`,
			table:     "orders",
			extra:     "set: done = true\n",
			wantCheck: "2-key-column",
			wantMsg:   []string{"is double precision", "must be smallint, integer, bigint, numeric"},
		},
		{
			name:  "numeric key",
			setup: `CREATE TABLE %[1]s.orders (id numeric(20,2) PRIMARY KEY, done bool)`,
			table: "orders",
			extra: "set: done = true\n",
		},
		{
			name:  "composite key",
			setup: `CREATE TABLE %[1]s.orders (tenant_id int, id bigint, done bool, PRIMARY KEY (tenant_id, id))`,
			table: "orders",
			key:   "[tenant_id, id]",
			extra: "set: done = true\n",
		},
		{
			// Unique through an index on the key's columns in another order.
			name:      "composite key not leading an index",
			setup:     `CREATE TABLE %[1]s.orders (tenant_id int, id bigint, done bool, PRIMARY KEY (tenant_id, id))`,
			table:     "orders",
			key:       "[id, tenant_id]",
			extra:     "set: done = true\n",
			wantCheck: "3-key-index",
			wantMsg:   []string{"key (id, tenant_id) of S.orders has no valid btree index leading with it", "CREATE INDEX CONCURRENTLY ON S.orders (id, tenant_id)"},
		},
		{
			name:  "time key with ties and a primary key",
			setup: `CREATE TABLE %[1]s.orders (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, done bool); CREATE INDEX ON %[1]s.orders (created_at)`,
			table: "orders",
			key:   "created_at",
			extra: "set: done = true\nwindow: 1h\n",
		},
		{
			name:      "time key with ties and no primary key",
			setup:     `CREATE TABLE %[1]s.orders (id bigint, created_at timestamptz NOT NULL, done bool); CREATE INDEX ON %[1]s.orders (created_at)`,
			table:     "orders",
			key:       "created_at",
			extra:     "set: done = true\n",
			wantCheck: "2-key-column",
			wantMsg:   []string{"not unique and the table has no primary key", "key: [created_at, id]"},
		},
		{
			name:      "window on an integer key",
			setup:     `CREATE TABLE %[1]s.orders (id bigint PRIMARY KEY, done bool)`,
			table:     "orders",
			extra:     "set: done = true\nwindow: 1d\n",
			wantCheck: "2-key-column",
			wantMsg:   []string{"window: 1d slices a time key", "int"},
		},
		{
			// The key grows a tie-breaker, so a batch's bounds are two
			// columns each: $1..$4.
			name:      "sql that binds one column of a tie-broken key",
			setup:     `CREATE TABLE %[1]s.orders (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, n int); CREATE INDEX ON %[1]s.orders (created_at)`,
			table:     "orders",
			key:       "created_at",
			extra:     "sql: UPDATE {table} SET n = 1 WHERE created_at BETWEEN $1 AND $2\n",
			wantCheck: "2-key-column",
			wantMsg:   []string{"must use all of $1..$4", "the key of S.orders is (created_at, id)", "appends the primary key"},
		},
		{
			name:  "bigint key",
			setup: `CREATE TABLE %[1]s.orders (id bigint PRIMARY KEY, done bool)`,
			table: "orders",
			extra: "set: done = true\n",
		},
		{
			name:  "integer key",
			setup: `CREATE TABLE %[1]s.orders (id integer PRIMARY KEY, done bool)`,
			table: "orders",
			extra: "set: done = true\n",
		},
		{
			name:  "smallint key",
			setup: `CREATE TABLE %[1]s.orders (id smallint PRIMARY KEY, done bool)`,
			table: "orders",
			extra: "set: done = true\n",
		},
	})
}
