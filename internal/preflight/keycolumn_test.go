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
			wantMsg:   []string{`key column "code" of S.orders is bytea`, "must be smallint, integer, bigint, uuid, text or varchar"},
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
			name:      "numeric key",
			setup:     `CREATE TABLE %[1]s.orders (id numeric(20) PRIMARY KEY, done bool)`,
			table:     "orders",
			extra:     "set: done = true\n",
			wantCheck: "2-key-column",
			wantMsg:   []string{"is numeric(20,0)", "must be smallint, integer, bigint, uuid, text or varchar"},
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
