package keyspace

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// The ordered shape: every key Go cannot order, because its order lives in
// the database. One text or varchar column (ordered by its collation), one
// date, timestamp, timestamptz or numeric column, and every composite key
// (tenant_id, id) or (created_at, id) whatever its columns' types. Keys
// hold each column's value in PostgreSQL's text form (read with ::text,
// which is lossless for these types: microseconds and offsets, a numeric's
// scale, any character), bound as text so PostgreSQL reads each as its
// column's type, and every comparison happens in the database as one row
// value: (a, b) > ($1, $2), one index range scan. Go never compares two
// keys of this shape.
//
// Split points are real keys from the database, stored in the slicing at
// the first start because their order cannot be recomputed here: the
// histogram of a one-column key (pg_stats.histogram_bounds), otherwise a
// TABLESAMPLE of the key (composite and skewed keys), or the last key
// before each calendar window's start for a time key with window:. Ranges
// cannot be [p_i, p_{i+1}) with inclusive bounds (no key just below p_{i+1}
// can be named), so range 0 is [from, p_1] and range i > 0 is
// (p_i, p_{i+1}] with an exclusive lower bound (Range.After), the last one
// ending at to. Consecutive ranges share a bound that one excludes and the
// other includes, so they cover [from, to] with no gap and no overlap as
// long as the points ascend in the key's order, which the database
// guarantees (each source reads them ORDER BY the key).

// orderedShape carries the key columns' types as the catalog names them
// (base types, no typmod: "timestamp with time zone") and, for a
// one-column key, its histogram bounds as Open read them.
type orderedShape struct {
	types []string
	hist  []Key
}

// orderedTypes are the column types the ordered shape walks, by base type.
var orderedTypes = map[string]string{
	"smallint": "0", "integer": "0", "bigint": "0", "numeric": "0",
	"uuid": uuidNil, "text": "", "character varying": "",
	"date": "2000-01-01", "timestamp without time zone": "2000-01-01 00:00:00",
	"timestamp with time zone": "2000-01-01 00:00:00+00",
}

// name is the one column's kind ("text", "timestamptz", …), or
// "composite".
func (sh orderedShape) name() string {
	if len(sh.types) > 1 {
		return "composite"
	}
	switch t := sh.types[0]; t {
	case "character varying":
		return "text"
	case "timestamp without time zone":
		return "timestamp"
	case "timestamp with time zone":
		return "timestamptz"
	default:
		return t
	}
}

// origin is each column's zero: the smallest text, 0, the nil uuid, a date.
func (sh orderedShape) origin() Key {
	vals := make([]string, len(sh.types))
	for i, t := range sh.types {
		vals[i] = orderedTypes[t]
	}
	return NewKey(vals...)
}

func (sh orderedShape) bind(k Key) ([]any, error) {
	if err := sh.check(k); err != nil {
		return nil, err
	}
	out := make([]any, len(k.vals))
	for i, v := range k.vals {
		out[i] = v
	}
	return out, nil
}

// anyOf compares the key with rows unnested from one text array per
// column, each cast to its column's type: PostgreSQL has no array of an
// anonymous row type to bind, and a text array compared with a date
// column would not resolve.
func (sh orderedShape) anyOf(cols []string, first int) string {
	arrays, casts := make([]string, len(cols)), make([]string, len(cols))
	for i := range cols {
		arrays[i] = fmt.Sprintf("$%d::text[]", first+i)
		casts[i] = fmt.Sprintf("u.c%d::%s", i, sh.types[i])
	}
	names := make([]string, len(cols))
	for i := range names {
		names[i] = fmt.Sprintf("c%d", i)
	}
	return fmt.Sprintf("(%s) IN (SELECT %s FROM unnest(%s) AS u(%s))",
		quoteList(cols, ""), strings.Join(casts, ", "), strings.Join(arrays, ", "), strings.Join(names, ", "))
}

func (sh orderedShape) array(keys []Key) ([]any, error) {
	cols := make([][]string, len(sh.types))
	for _, k := range keys {
		if err := sh.check(k); err != nil {
			return nil, err
		}
		for i, v := range k.vals {
			cols[i] = append(cols[i], v)
		}
	}
	out := make([]any, len(cols))
	for i, c := range cols {
		out[i] = c
	}
	return out, nil
}

// selectList reads each column as text: the lossless form keys hold. Each
// is named apart from the columns: "a"::text keeps the name a, and ORDER
// BY a would then sort by that text instead of by the column.
func (orderedShape) selectList(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = fmt.Sprintf(`%s::text AS "ebb key %d"`, pgx.Identifier{c}.Sanitize(), i)
	}
	return strings.Join(q, ", ")
}

func (sh orderedShape) collect(rows pgx.Rows) ([]Key, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Key, error) {
		vals := make([]string, len(sh.types))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		err := row.Scan(ptrs...)
		return Key{vals: vals}, err
	})
}

func (orderedShape) extremes(ctx context.Context, q Querier, cols []string, table string) (lo, hi Key, ok bool, err error) {
	return indexExtremes(ctx, q, cols, table)
}

// ahead cannot count keys: it returns k itself, so an EXPLAIN plans the
// one-key range [k, k], still through the key's index.
func (sh orderedShape) ahead(k Key, _, _ int64) (Key, error) { return k, sh.check(k) }

// halve has no arithmetic: Space.Split probes the index for a middle key.
func (orderedShape) halve(Key, Key) (last, next Key, ok bool, err error) {
	return Key{}, Key{}, false, nil
}

// sample cannot draw keys at random without the database: it returns the
// range's own bounds that lie in it (hi, and lo unless it is exclusive),
// which are real keys when rows held them.
func (sh orderedShape) sample(r Range, n int) ([]Key, error) {
	bounds := []Key{r.Hi}
	if !r.After && !r.Lo.Equal(r.Hi) {
		bounds = append(bounds, r.Lo)
	}
	for _, k := range bounds {
		if err := sh.check(k); err != nil {
			return nil, err
		}
	}
	return bounds[:min(n, len(bounds))], nil
}

// slice cuts [from, to] at about rows/span of the histogram's inner
// bounds: all a slicing without the database can use. Space.SliceTable
// reads better points (a sample, calendar windows) where the shape needs
// them.
func (sh orderedShape) slice(from, to Key, span, rows int64) (Slicing, error) {
	return sh.pointSlicing(from, to, span, rows, thin(sh.hist, rangeCount(rows, span)))
}

func (sh orderedShape) pointSlicing(from, to Key, span, rows int64, points []Key) (Slicing, error) {
	for _, k := range append([]Key{from, to}, points...) {
		if err := sh.check(k); err != nil {
			return Slicing{}, err
		}
	}
	sl, err := newPointSlices(from, to, span, rows, points)
	if err != nil {
		return Slicing{}, err
	}
	return Slicing{impl: sl}, nil
}

// check refuses a key of another width: a key of this shape has one value
// per column and nothing else Go can judge.
func (sh orderedShape) check(k Key) error {
	if len(k.vals) != len(sh.types) {
		return fmt.Errorf("key %s has %d columns, this key has %d: %w", k, len(k.vals), len(sh.types), ErrBadKey)
	}
	return nil
}

// thin picks the split points of n ranges from keys sorted ascending (a
// histogram, whose first and last bounds are the sample's min and max, or
// a sample): inner keys at about equal steps, each once. Fewer inner keys
// than n-1 give fewer ranges.
func thin(keys []Key, n int64) []Key {
	buckets := int64(len(keys)) - 1
	if buckets < 2 || n < 2 {
		return nil
	}
	var points []Key
	last := int64(0)
	for i := int64(1); i < n; i++ {
		at := i * buckets / n
		if at > last && at < buckets && !keys[at].Equal(keys[last]) {
			points = append(points, keys[at])
			last = at
		}
	}
	return points
}

// rangeCount is how many ranges of about span rows hold rows rows; one
// when the estimate is unknown.
func rangeCount(rows, span int64) int64 {
	if rows <= 0 || span < 1 {
		return 1
	}
	return (rows-1)/span + 1
}

// collectText reads rows of one text-typed key column (a uuid read as
// text) into keys, and closes rows.
func collectText(rows pgx.Rows) ([]Key, error) {
	vals, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	keys := make([]Key, len(vals))
	for i, v := range vals {
		keys[i] = NewKey(v)
	}
	return keys, nil
}

// indexExtremes reads the first and last key of the index, each as an
// array of its columns' texts: uuid has no min or max aggregate before
// PostgreSQL 18, and for text the index order is the collation's, which
// ORDER BY follows. Rows with a NULL key column are left out: NULLs sort
// last, so DESC would otherwise read one first.
func indexExtremes(ctx context.Context, q Querier, cols []string, table string) (lo, hi Key, ok bool, err error) {
	notNull := strings.ReplaceAll(quoteList(cols, " IS NOT NULL"), ", ", " AND ")
	query := fmt.Sprintf("SELECT (SELECT ARRAY[%[1]s] FROM %[2]s WHERE %[3]s ORDER BY %[4]s LIMIT 1), (SELECT ARRAY[%[1]s] FROM %[2]s WHERE %[3]s ORDER BY %[5]s LIMIT 1)",
		quoteList(cols, "::text"), table, notNull, quoteList(cols, ""), quoteList(cols, " DESC"))
	var mn, mx []string
	if err := q.QueryRow(ctx, query).Scan(&mn, &mx); err != nil {
		return Key{}, Key{}, false, err
	}
	if mn == nil || mx == nil {
		return Key{}, Key{}, false, nil
	}
	return NewKey(mn...), NewKey(mx...), true, nil
}

// quoteList is the quoted columns, each followed by suffix, comma
// separated.
func quoteList(cols []string, suffix string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = pgx.Identifier{c}.Sanitize() + suffix
	}
	return strings.Join(q, ", ")
}

// singleAnyOf is "col = ANY($first)" for a one-column shape.
func singleAnyOf(cols []string, first int) string {
	return fmt.Sprintf("%s = ANY($%d)", quoteList(cols, ""), first)
}
