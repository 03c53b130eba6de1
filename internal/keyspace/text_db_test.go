package keyspace_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/keyspace"
)

// TestTextSlicingCoversUnderCollation slices an analyzed text key under an
// ICU collation from its histogram and walks every range with the seam's
// own predicates on real PostgreSQL: every row lies in exactly one range.
func TestTextSlicingCoversUnderCollation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := ebbtest.Schema(t)
	table := db.Table("words")
	db.Exec(t, `CREATE TABLE `+table+` (k text COLLATE "en-US-x-icu" PRIMARY KEY, hits int NOT NULL DEFAULT 0)`)
	db.Exec(t, `INSERT INTO `+table+` (k) SELECT p || i FROM unnest(ARRAY['apfel', 'Apfel', 'Bär', 'bar', 'élan', 'Zoë', 'zebra', 'ñandú', '日本', 'straße']) p, generate_series(1, 300) i`)
	db.Exec(t, `ANALYZE `+table)

	sp, err := keyspace.Open(ctx, db.Pool, table, "k")
	require.NoError(t, err)
	require.Equal(t, "text", sp.Shape())
	from, to, ok, err := sp.Extremes(ctx, db.Pool, table)
	require.NoError(t, err)
	require.True(t, ok)
	cMin := db.Count(t, `SELECT count(*) FROM `+table+` WHERE k COLLATE "C" < $1 COLLATE "C"`, from.String())
	require.Positive(t, cMin, "the collation orders %q first, byte order would not: ordering matters here", from)

	sl, err := sp.Slice(from, to, 300)
	require.NoError(t, err)
	require.Greater(t, sl.Ranges(), int64(5), "about rows/task_span ranges from the histogram")
	sl, err = keyspace.DecodeSlicing(sl.Encode())
	require.NoError(t, err)
	for id := range sl.Ranges() {
		r, err := sl.Range(id)
		require.NoError(t, err)
		pred := sp.From(1)
		if r.After {
			pred = sp.After(1)
		}
		args, err := sp.Args(r.Lo, r.Hi)
		require.NoError(t, err)
		db.Exec(t, fmt.Sprintf(`UPDATE %s SET hits = hits + 1 WHERE %s`, table, pred), args...)
	}
	require.Zero(t, db.Count(t, `SELECT count(*) FROM `+table+` WHERE hits <> 1`), "every row in exactly one range")
}

// TestOpenTextWithoutHistogram opens a varchar key never analyzed: one
// range from the first key to the last.
func TestOpenTextWithoutHistogram(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := ebbtest.Schema(t)
	table := db.Table("codes")
	db.Exec(t, `CREATE TABLE `+table+` (code varchar(20) PRIMARY KEY)`)
	db.Exec(t, `INSERT INTO `+table+` VALUES ('b'), ('A'), ('ä')`)
	sp, err := keyspace.Open(ctx, db.Pool, table, "code")
	require.NoError(t, err)
	require.Equal(t, "text", sp.Shape())
	from, to, ok, err := sp.Extremes(ctx, db.Pool, table)
	require.NoError(t, err)
	require.True(t, ok)
	sl, err := sp.Slice(from, to, 1)
	require.NoError(t, err)
	require.Equal(t, int64(1), sl.Ranges())
}
