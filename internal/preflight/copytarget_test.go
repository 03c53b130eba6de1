package preflight_test

import "testing"

func TestCheckCopyTarget(t *testing.T) {
	t.Parallel()
	const orders = `CREATE TABLE %[1]s.orders (id bigint PRIMARY KEY, state int NOT NULL, done bool);`
	runCases(t, []checkCase{
		{
			name:      "no target table",
			setup:     orders,
			table:     "orders",
			extra:     "copy: {to: {table}_v2, columns: {id: id}}\n",
			wantCheck: "3-copy-target",
			wantMsg:   []string{`copy target "S.orders_v2" does not exist`, "create it first"},
		},
		{
			name:      "target without a column",
			setup:     orders + `CREATE TABLE %[1]s.orders_v2 (id bigint PRIMARY KEY)`,
			table:     "orders",
			extra:     "copy: {to: {table}_v2, columns: {id: id, label: state::text}}\n",
			wantCheck: "3-copy-target",
			wantMsg:   []string{"has no column label", "fix copy.columns"},
		},
		{
			name:      "target without a unique key",
			setup:     orders + `CREATE TABLE %[1]s.orders_v2 (id bigint, label text); CREATE INDEX ON %[1]s.orders_v2 (id)`,
			table:     "orders",
			extra:     "copy: {to: {table}_v2, columns: {id: id, label: state::text}}\n",
			wantCheck: "3-copy-target",
			wantMsg:   []string{"no primary key or unique index on (id)", "a redone batch changes nothing", "CREATE UNIQUE INDEX CONCURRENTLY ON"},
		},
		{
			// A partial unique index is no ON CONFLICT arbiter.
			name:      "target with a partial unique index only",
			setup:     orders + `CREATE TABLE %[1]s.orders_v2 (id bigint, label text); CREATE UNIQUE INDEX ON %[1]s.orders_v2 (id) WHERE label IS NOT NULL`,
			table:     "orders",
			extra:     "copy: {to: {table}_v2, columns: {id: id, label: state::text}}\n",
			wantCheck: "3-copy-target",
			wantMsg:   []string{"no primary key or unique index on (id)"},
		},
		{
			// A deferrable constraint is no ON CONFLICT arbiter either.
			name:      "target with a deferrable primary key",
			setup:     orders + `CREATE TABLE %[1]s.orders_v2 (id bigint PRIMARY KEY DEFERRABLE, label text)`,
			table:     "orders",
			extra:     "copy: {to: {table}_v2, columns: {id: id, label: state::text}}\n",
			wantCheck: "3-copy-target",
			wantMsg:   []string{"no primary key or unique index on (id)"},
		},
		{
			// Both sides are bounded by the same key values: sorted
			// otherwise, a range of the source is another range of the
			// target.
			name:      "target key with another collation",
			setup:     `CREATE TABLE %[1]s.codes (code text COLLATE "C" PRIMARY KEY, done bool); CREATE TABLE %[1]s.codes_v2 (code text COLLATE "en-US-x-icu" PRIMARY KEY)`,
			table:     "codes",
			key:       "code",
			extra:     "copy: {to: {table}_v2, columns: {code: code}}\n",
			wantCheck: "3-copy-target",
			wantMsg:   []string{`key column code is text COLLATE "C" in the source but code is text COLLATE "en-US-x-icu" in the target`, "same type and collation"},
		},
		{
			name:  "target ready",
			setup: orders + `CREATE TABLE %[1]s.orders_v2 (id bigint PRIMARY KEY, label text)`,
			table: "orders",
			extra: "copy: {to: {table}_v2, columns: {id: id, label: state::text}}\n",
		},
	})
}
