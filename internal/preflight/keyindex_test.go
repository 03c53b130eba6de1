package preflight_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/preflight"
)

func TestCheckKeyIndex(t *testing.T) {
	t.Parallel()
	noIndex := []string{`key column "id" of S.orders has no valid btree index leading with it`, "CREATE INDEX CONCURRENTLY ON S.orders (id)"}
	runCases(t, []checkCase{
		{
			name:      "no index",
			setup:     `CREATE TABLE %[1]s.orders (id bigint, done bool)`,
			table:     "orders",
			extra:     "set: done = true\n",
			wantCheck: "3-key-index",
			wantMsg:   noIndex,
		},
		{
			// A hash index answers equality only; it cannot walk a range.
			name:      "hash index only",
			setup:     `CREATE TABLE %[1]s.orders (id bigint, done bool); CREATE INDEX ON %[1]s.orders USING hash (id)`,
			table:     "orders",
			extra:     "set: done = true\n",
			wantCheck: "3-key-index",
			wantMsg:   noIndex,
		},
		{
			// A partial index misses the rows outside its predicate.
			name:      "partial btree index only",
			setup:     `CREATE TABLE %[1]s.orders (id bigint, done bool); CREATE INDEX ON %[1]s.orders (id) WHERE done IS NOT TRUE`,
			table:     "orders",
			extra:     "set: done = true\n",
			wantCheck: "3-key-index",
			wantMsg:   noIndex,
		},
		{
			name:      "key is the second column of the index",
			setup:     `CREATE TABLE %[1]s.orders (id bigint, shop int, done bool); CREATE INDEX ON %[1]s.orders (shop, id)`,
			table:     "orders",
			extra:     "set: done = true\n",
			wantCheck: "3-key-index",
			wantMsg:   noIndex,
		},
		{
			name:      "expression index on the key",
			setup:     `CREATE TABLE %[1]s.orders (id bigint, done bool); CREATE INDEX ON %[1]s.orders ((id + 0))`,
			table:     "orders",
			extra:     "set: done = true\n",
			wantCheck: "3-key-index",
			wantMsg:   noIndex,
		},
		{
			name:  "primary key",
			setup: `CREATE TABLE %[1]s.orders (id bigint PRIMARY KEY, done bool)`,
			table: "orders",
			extra: "set: done = true\n",
		},
		{
			name:  "plain btree index beside a hash one",
			setup: `CREATE TABLE %[1]s.orders (id bigint, done bool); CREATE INDEX ON %[1]s.orders USING hash (id); CREATE INDEX ON %[1]s.orders (id)`,
			table: "orders",
			extra: "set: done = true\n",
		},
		{
			name:  "composite index leading with the key",
			setup: `CREATE TABLE %[1]s.orders (id bigint, shop int, done bool); CREATE INDEX ON %[1]s.orders (id, shop)`,
			table: "orders",
			extra: "set: done = true\n",
		},
	})
}

// TestCheckKeyIndexFindsEveryIndex: the EXPLAIN check accepts a plan on any
// btree index that leads with the key, so all of them must be listed, and
// none of the others.
func TestCheckKeyIndexFindsEveryIndex(t *testing.T) {
	t.Parallel()
	db := ebbtest.Schema(t)
	db.Exec(t, `CREATE TABLE `+db.Table("orders")+` (id bigint, shop int, done bool)`)
	db.Exec(t, `CREATE INDEX orders_id_a ON `+db.Table("orders")+` (id)`)
	db.Exec(t, `CREATE INDEX orders_id_b ON `+db.Table("orders")+` (id, shop)`)
	db.Exec(t, `CREATE INDEX orders_shop ON `+db.Table("orders")+` (shop, id)`)
	db.Exec(t, `CREATE INDEX orders_id_hash ON `+db.Table("orders")+` USING hash (id)`)

	spec := parseSpec(t, specYAML(db.Table("orders"), "id", "set: done = true\n"))
	res, err := preflight.Run(context.Background(), db.Pool, spec, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"orders_id_a", "orders_id_b"}, res.KeyIndexes)
}
