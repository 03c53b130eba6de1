package keyspace_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/keyspace"
)

// TestSliceTableCovers slices keys of every ordered shape the way start
// does (a sample, calendar windows, a histogram), stores and reloads the
// slicing, and runs the seam's own range predicates on real PostgreSQL:
// every row lies in exactly one range, whatever the skew or the ties.
func TestSliceTableCovers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, ddl string
		key       []string
		span      int64
		window    string
		shape     string
		minRanges int64
	}{
		{"composite skewed by tenant", `CREATE TABLE %[1]s (tenant_id int, id bigint, hits int NOT NULL DEFAULT 0, PRIMARY KEY (tenant_id, id));
			INSERT INTO %[1]s (tenant_id, id) SELECT CASE WHEN g %% 10 = 0 THEN g %% 13 ELSE 5 END, g FROM generate_series(1, 20000) g`,
			[]string{"tenant_id", "id"}, 1000, "", "composite", 10},
		{"timestamptz ties by hour windows", `CREATE TABLE %[1]s (id bigint PRIMARY KEY, at timestamptz NOT NULL, hits int NOT NULL DEFAULT 0);
			CREATE INDEX ON %[1]s (at);
			INSERT INTO %[1]s (id, at) SELECT g, timestamptz '2024-01-01 00:00:00.000001+00' + (g / 700) * interval '20 minutes' FROM generate_series(1, 20000) g`,
			[]string{"at"}, 1000, "1h", "composite", 9},
		{"timestamp ties by count", `CREATE TABLE %[1]s (id bigint PRIMARY KEY, at timestamp NOT NULL, hits int NOT NULL DEFAULT 0);
			CREATE INDEX ON %[1]s (at);
			INSERT INTO %[1]s (id, at) SELECT g, timestamp '2024-01-01' + (g / 3000) * interval '1 second' FROM generate_series(1, 20000) g`,
			[]string{"at"}, 1000, "", "composite", 10},
		{"date by week windows", `CREATE TABLE %[1]s (id bigint PRIMARY KEY, d date NOT NULL, hits int NOT NULL DEFAULT 0);
			CREATE INDEX ON %[1]s (d);
			INSERT INTO %[1]s (id, d) SELECT g, date '2023-12-25' + (g %% 60) FROM generate_series(1, 6000) g`,
			[]string{"d"}, 1000, "1w", "composite", 8},
		{"unique numeric by histogram", `CREATE TABLE %[1]s (n numeric(14,4) PRIMARY KEY, hits int NOT NULL DEFAULT 0);
			INSERT INTO %[1]s (n) SELECT (g::numeric / 3)::numeric(14,4) FROM generate_series(-10000, 10000) g`,
			[]string{"n"}, 1000, "", "numeric", 10},
		{"unique timestamptz by histogram", `CREATE TABLE %[1]s (at timestamptz PRIMARY KEY, hits int NOT NULL DEFAULT 0);
			INSERT INTO %[1]s (at) SELECT timestamptz '2024-06-01 12:00:00+05:30' + g * interval '1 microsecond' FROM generate_series(1, 20000) g`,
			[]string{"at"}, 1000, "", "timestamptz", 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := ebbtest.Schema(t)
			table := db.Table("t")
			db.Exec(t, fmt.Sprintf(tc.ddl, table))
			db.Exec(t, "ANALYZE "+table)
			sp, err := keyspace.Open(ctx, db.Pool, table, tc.key...)
			require.NoError(t, err)
			require.Equal(t, tc.shape, sp.Shape())
			from, to, ok, err := sp.Extremes(ctx, db.Pool, table)
			require.NoError(t, err)
			require.True(t, ok)
			w, err := keyspace.ParseWindow(tc.window)
			if tc.window == "" {
				w, err = keyspace.Window{}, nil
			}
			require.NoError(t, err)
			sl, err := sp.SliceTable(ctx, db.Pool, table, from, to, tc.span, w)
			require.NoError(t, err)
			require.GreaterOrEqual(t, sl.Ranges(), tc.minRanges)
			sl, err = keyspace.DecodeSlicing(sl.Encode())
			require.NoError(t, err)
			for id := range sl.Ranges() {
				r, err := sl.Range(id)
				require.NoError(t, err)
				args, err := sp.Args(r.Lo, r.Hi)
				require.NoError(t, err)
				db.Exec(t, fmt.Sprintf(`UPDATE %s SET hits = hits + 1 WHERE %s`, table, sp.Of(r, 1)), args...)
			}
			require.Zero(t, db.Count(t, `SELECT count(*) FROM `+table+` WHERE hits <> 1`), "every row in exactly one range")
		})
	}
}

// TestSplitProbesMiddleKey: a composite range is split at the middle row
// the index names, into [lo, mid] and (mid, hi] that hold every row of it
// once; a range of one row cannot be split.
func TestSplitProbesMiddleKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := ebbtest.Schema(t)
	table := db.Table("t")
	db.Exec(t, `CREATE TABLE `+table+` (a text, b int, hits int NOT NULL DEFAULT 0, PRIMARY KEY (a, b))`)
	db.Exec(t, `INSERT INTO `+table+` (a, b) SELECT chr(65 + g % 3), g FROM generate_series(1, 999) g`)
	sp, err := keyspace.Open(ctx, db.Pool, table, "a", "b")
	require.NoError(t, err)
	lo, hi, _, err := sp.Extremes(ctx, db.Pool, table)
	require.NoError(t, err)
	first, second, ok, err := sp.Split(ctx, db.Pool, table, lo, hi)
	require.NoError(t, err)
	require.True(t, ok)
	require.False(t, first.After)
	require.True(t, second.After, "the second half starts strictly after the middle key")
	for _, r := range []keyspace.Range{first, second} {
		args, err := sp.Args(r.Lo, r.Hi)
		require.NoError(t, err)
		db.Exec(t, fmt.Sprintf(`UPDATE %s SET hits = hits + 1 WHERE %s`, table, sp.Of(r, 1)), args...)
	}
	require.Zero(t, db.Count(t, `SELECT count(*) FROM `+table+` WHERE hits <> 1`), "the halves cover the range once")
	args, err := sp.Args(first.Lo, first.Hi)
	require.NoError(t, err)
	require.InDelta(t, 500, db.Count(t, fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s`, table, sp.From(1)), args...), 1)

	_, _, ok, err = sp.Split(ctx, db.Pool, table, lo, lo)
	require.NoError(t, err)
	require.False(t, ok, "one key cannot be split")
}

// FuzzTypedKeyRoundTrip: a key of every ordered column type, read from
// PostgreSQL as ebb reads it, encoded for Redis and decoded again, binds
// back to the very row it came from: text with any characters, numerics
// keeping their scale, timestamps with microseconds and offsets under a
// non-UTC session time zone, dates and uuids.
func FuzzTypedKeyRoundTrip(f *testing.F) {
	f.Add("apfel", int64(1500), int64(1), "Europe/Berlin")
	f.Add("Bär \"quoted\"\n\\ (a, b) ,", int64(-7), int64(-62135596800000000), "America/St_Johns")
	f.Add("日本 🍣", int64(0), int64(1717243199999999), "Asia/Kolkata")
	f.Add("", int64(123456789012345), int64(946684800000001), "UTC")
	db := ebbtest.Schema(f)
	table := db.Table("typed")
	db.Exec(f, `CREATE TABLE `+table+` (t text COLLATE "en-US-x-icu", n numeric(30,3), ts timestamptz, tsz timestamp, d date, u uuid, PRIMARY KEY (t, n, ts, tsz, d, u))`)
	cols := []string{"t", "n", "ts", "tsz", "d", "u"}
	f.Fuzz(func(t *testing.T, s string, n, micros int64, zone string) {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) || micros < -200000000000000000 || micros > 200000000000000000 {
			return // not a PostgreSQL text value, or a timestamp out of range
		}
		ctx := context.Background()
		conn, err := db.Pool.Acquire(ctx)
		require.NoError(t, err)
		defer conn.Release()
		tx, err := conn.Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, "SELECT set_config('TimeZone', $1, true)", zone); err != nil {
			return // not a zone PostgreSQL knows
		}
		_, err = tx.Exec(ctx, `INSERT INTO `+table+` VALUES ($1, $2::numeric / 1000, to_timestamp(0) + $3 * interval '1 microsecond',
			timestamp '2000-01-01' + $3 * interval '1 microsecond', date '2000-01-01' + ($3 / 86400000000)::int, md5($1)::uuid)`, s, n, micros)
		require.NoError(t, err)
		sp, err := keyspace.Open(ctx, tx, table, cols...)
		require.NoError(t, err)
		rows, err := tx.Query(ctx, fmt.Sprintf("SELECT %s FROM %s WHERE t = $1", sp.Select(), table), s)
		require.NoError(t, err)
		keys, err := sp.CollectKeys(rows)
		require.NoError(t, err)
		require.Len(t, keys, 1)
		back, err := keyspace.DecodeKey(keys[0].Encode())
		require.NoError(t, err)
		require.True(t, back.Equal(keys[0]))
		args, err := sp.Args(back, back)
		require.NoError(t, err)
		var found int
		require.NoError(t, tx.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE %s", table, sp.InRange(1)), args...).Scan(&found))
		require.Equal(t, 1, found, "key %s binds back to its row", back)
	})
}
