package keyspace

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// The text shape: one text or varchar column. Text has no arithmetic and
// orders only under the column's collation, which lives in the database:
// Go never compares two text keys. Keys hold the value itself (any
// characters PostgreSQL text holds, non-ASCII too), bound as text, so every
// comparison happens in PostgreSQL under the column's (and its index's)
// collation. Split points come from the planner's histogram of the column
// (pg_stats.histogram_bounds, sorted in that collation), read by Open, and
// are stored in the slicing at the first start, because text order cannot
// be recomputed here.
//
// Ranges cannot be [p_i, p_{i+1}) with inclusive bounds (no key just below
// p_{i+1} can be named), so range 0 is [from, p_1] and range i > 0 is
// (p_i, p_{i+1}] with an exclusive lower bound (Range.After), the last one
// ending at to. Consecutive ranges share a bound that one excludes and the
// other includes, so under any collation they cover [from, to] with no gap
// and no overlap, as long as the points ascend in that collation, which
// the histogram guarantees.

// shapeText is the text shape, sliced at the column's histogram bounds.
const shapeText = "text"

// textShape carries the key column's histogram bounds as Open read them
// (empty when the table was never analyzed).
type textShape struct {
	hist []Key
}

// openText reads the histogram bounds of a text key column as text,
// ascending in the column's collation; none when the table was never
// analyzed (or holds too few distinct values for a histogram).
func openText(ctx context.Context, q Querier, table, column string) (textShape, error) {
	var hist []string
	err := q.QueryRow(ctx, `
		SELECT coalesce((SELECT s.histogram_bounds::text::text[]
			FROM pg_stats s JOIN pg_class c ON c.relname = s.tablename
			JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = s.schemaname
			WHERE c.oid = to_regclass($1) AND s.attname = $2 AND NOT s.inherited), '{}')`,
		table, column).Scan(&hist)
	if err != nil {
		return textShape{}, fmt.Errorf("read the histogram of key column %q of %s: %w", column, table, err)
	}
	sh := textShape{hist: make([]Key, len(hist))}
	for i, v := range hist {
		sh.hist[i] = NewKey(v)
	}
	return sh, nil
}

func (textShape) name() string { return shapeText }

// origin is the empty string, the smallest text in every collation.
func (textShape) origin() Key { return NewKey("") }

func (textShape) bind(k Key) (any, error) { return textOf(k) }

func (textShape) array(keys []Key) (any, error) {
	out := make([]string, len(keys))
	for i, k := range keys {
		v, err := textOf(k)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (textShape) collect(rows pgx.Rows) ([]Key, error) { return collectText(rows) }

func (textShape) extremes(cols, table string) string { return indexExtremes(cols, table) }

// ahead cannot count keys in text: it returns k itself, so an EXPLAIN plans
// the one-key range [k, k], still through the key's index.
func (textShape) ahead(k Key, _, _ int64) (Key, error) {
	if _, err := textOf(k); err != nil {
		return Key{}, err
	}
	return k, nil
}

// halve has no middle key to offer: text has no arithmetic, and a middle
// key probed from the index (ORDER BY key OFFSET n LIMIT 1 within the
// range) needs the database, which the seam's halve does not have yet. A
// text range that keeps timing out therefore fails as a batch that gave up.
func (textShape) halve(Key, Key) (last, next Key, ok bool, err error) {
	return Key{}, Key{}, false, nil
}

// sample cannot draw text keys at random without the database: it returns
// the range's own bounds that lie in it (hi, and lo unless it is
// exclusive), which are real keys of the slicing when rows held them.
func (textShape) sample(r Range, n int) ([]Key, error) {
	bounds := []Key{r.Hi}
	if !r.After && !r.Lo.Equal(r.Hi) {
		bounds = append(bounds, r.Lo)
	}
	for _, k := range bounds {
		if _, err := textOf(k); err != nil {
			return nil, err
		}
	}
	return bounds[:min(n, len(bounds))], nil
}

// slice cuts [from, to] at about rows/span of the histogram's inner bounds.
func (sh textShape) slice(from, to Key, span, rows int64) (Slicing, error) {
	sl, err := newTextSlices(from, to, span, rows, thin(sh.hist, textRangeCount(rows, span)))
	if err != nil {
		return Slicing{}, err
	}
	return Slicing{impl: sl}, nil
}

// textSlices is the text slicing: [from, to] cut at the stored points.
type textSlices struct {
	from, to   Key
	span, rows int64
	points     []Key
}

func newTextSlices(from, to Key, span, rows int64, points []Key) (textSlices, error) {
	if span < 1 {
		return textSlices{}, fmt.Errorf("task_span %d: must be at least 1", span)
	}
	for _, k := range append([]Key{from, to}, points...) {
		if _, err := textOf(k); err != nil {
			return textSlices{}, err
		}
	}
	return textSlices{from: from, to: to, span: span, rows: rows, points: points}, nil
}

func decodeTextSlicing(st stored) (Slicing, error) {
	sl, err := newTextSlices(st.From, st.To, st.Span, st.Rows, st.Points)
	if err != nil {
		return Slicing{}, err
	}
	return Slicing{impl: sl}, nil
}

func (sl textSlices) ranges() int64          { return int64(len(sl.points)) + 1 }
func (sl textSlices) taskSpan() int64        { return sl.span }
func (sl textSlices) bounds() (from, to Key) { return sl.from, sl.to }

// at is [from, p_1] for range 0 and (p_id, p_id+1] after it, the last
// range ending at to.
func (sl textSlices) at(id int64) (Range, error) {
	n := sl.ranges()
	if id < 0 || id >= n {
		return Range{}, fmt.Errorf("range %d out of bounds: the job has %d ranges", id, n)
	}
	r := Range{ID: id, Lo: sl.from, Hi: sl.to}
	if id > 0 {
		r.Lo, r.After = sl.points[id-1], true
	}
	if id < n-1 {
		r.Hi = sl.points[id]
	}
	return r, nil
}

// containing cannot order text outside the database; it finds only a key
// that is a range's upper bound (or from), and says false for any other.
func (sl textSlices) containing(k Key) (int64, bool) {
	if k.Equal(sl.from) {
		return 0, true
	}
	for i := int64(0); i < sl.ranges(); i++ {
		if r, _ := sl.at(i); r.Hi.Equal(k) {
			return i, true
		}
	}
	return 0, false
}

// holds, like containing, knows only a range's own bounds.
func (sl textSlices) holds(r Range, k Key) bool {
	return k.Equal(r.Hi) || (!r.After && k.Equal(r.Lo))
}

// reslice keeps every m-th stored point, m being span over the stored
// span: the histogram is not read again, so a finer span than the first
// start's gets the stored ranges.
func (sl textSlices) reslice(span int64) (Slicing, error) {
	m := max(span/max(sl.span, 1), 1)
	var points []Key
	for i := m - 1; i < int64(len(sl.points)); i += m {
		points = append(points, sl.points[i])
	}
	out, err := newTextSlices(sl.from, sl.to, span, sl.rows, points)
	if err != nil {
		return Slicing{}, err
	}
	return Slicing{impl: out}, nil
}

func (sl textSlices) stored() stored {
	return stored{Shape: shapeText, From: sl.from, To: sl.to, Span: sl.span, Rows: sl.rows, Points: sl.points}
}

// thin picks the split points of n ranges from a histogram: the inner
// bounds (the first and last are the sample's min and max) at about equal
// steps, each once. Fewer inner bounds than n-1 give fewer ranges.
func thin(hist []Key, n int64) []Key {
	buckets := int64(len(hist)) - 1
	if buckets < 2 || n < 2 {
		return nil
	}
	var points []Key
	last := int64(0)
	for i := int64(1); i < n; i++ {
		at := i * buckets / n
		if at > last && at < buckets {
			points = append(points, hist[at])
			last = at
		}
	}
	return points
}

// textRangeCount is how many ranges of about span rows hold rows rows; one
// when the estimate is unknown (without a histogram there are no points).
func textRangeCount(rows, span int64) int64 {
	if rows <= 0 || span < 1 {
		return 1
	}
	return (rows-1)/span + 1
}

// textOf is the value of a one-column text key.
func textOf(k Key) (string, error) {
	if len(k.vals) != 1 {
		return "", fmt.Errorf("key %s has %d columns, a text key has 1: %w", k, len(k.vals), ErrBadKey)
	}
	return k.vals[0], nil
}

// collectText reads rows of one text-typed key column (a uuid or a text
// column) into keys, and closes rows.
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

// indexExtremes reads the first and last key of the index as text: uuid
// has no min or max aggregate before PostgreSQL 18, and for text the index
// order is the collation's, which ORDER BY follows.
func indexExtremes(cols, table string) string {
	return fmt.Sprintf("SELECT (SELECT %[1]s FROM %[2]s ORDER BY %[1]s LIMIT 1)::text, (SELECT %[1]s FROM %[2]s ORDER BY %[1]s DESC LIMIT 1)::text", cols, table)
}
