package keyspace

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// The integer shape's arithmetic. All bounds are inclusive; widths and
// offsets are computed in uint64, where two's-complement wrap-around gives
// the right answer even for [MinInt64, MaxInt64] (see README.md).

// count is how many ranges of span keys cover [from,to].
func count(from, to, span int64) (int64, error) {
	if err := check(from, to, span); err != nil {
		return 0, err
	}
	width := uint64(to) - uint64(from) // keys minus one
	q := width / uint64(span)
	if q >= math.MaxInt64 {
		return 0, fmt.Errorf("range [%d,%d] with task_span %d has too many ranges; raise task_span", from, to, span)
	}
	return int64(q) + 1, nil
}

// at returns the bounds of range i of the slicing of [from,to] by span.
func at(from, to, span, i int64) (lo, hi int64, err error) {
	n, err := count(from, to, span)
	if err != nil {
		return 0, 0, err
	}
	if i < 0 || i >= n {
		return 0, 0, fmt.Errorf("range %d out of bounds: the job has %d ranges", i, n)
	}
	lo = int64(uint64(from) + uint64(i)*uint64(span))
	hi = to
	// Is there room for a whole span before to? Compare widths in uint64.
	if uint64(to)-uint64(lo) >= uint64(span) {
		hi = int64(uint64(lo) + uint64(span) - 1)
	}
	return lo, hi, nil
}

// indexOf returns the index of the range that holds key; false when key
// lies outside [from,to] or the slicing is invalid.
func indexOf(from, to, span, key int64) (int64, bool) {
	if check(from, to, span) != nil || key < from || key > to {
		return 0, false
	}
	return int64((uint64(key) - uint64(from)) / uint64(span)), true
}

func check(from, to, span int64) error {
	if span < 1 {
		return fmt.Errorf("task_span %d: must be at least 1", span)
	}
	if from > to {
		return fmt.Errorf("range [%d,%d] is empty: from is above to", from, to)
	}
	return nil
}

// intShape is the integer shape: one smallint, integer or bigint column,
// whose int64 values never leave this package.
type intShape struct{}

func (intShape) name() string { return shapeInt }

func (intShape) origin() Key { return Int(0) }

func (intShape) bind(k Key) ([]any, error) {
	v, err := intOf(k)
	return []any{v}, err
}

func (intShape) anyOf(cols []string, first int) string { return singleAnyOf(cols, first) }

func (intShape) selectList(cols []string) string { return quoteList(cols, "") }

func (intShape) array(keys []Key) ([]any, error) {
	out := make([]int64, len(keys))
	for i, k := range keys {
		v, err := intOf(k)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return []any{out}, nil
}

func (intShape) collect(rows pgx.Rows) ([]Key, error) {
	vals, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	keys := make([]Key, len(vals))
	for i, v := range vals {
		keys[i] = Int(v)
	}
	return keys, nil
}

// extremes uses min and max, which PostgreSQL answers from the btree's two
// ends.
func (intShape) extremes(ctx context.Context, q Querier, cols []string, table string) (lo, hi Key, ok bool, err error) {
	c := quoteList(cols, "")
	var mn, mx *string
	if err := q.QueryRow(ctx, fmt.Sprintf("SELECT (SELECT min(%s) FROM %s)::text, (SELECT max(%s) FROM %s)::text", c, table, c, table)).Scan(&mn, &mx); err != nil {
		return Key{}, Key{}, false, err
	}
	if mn == nil || mx == nil {
		return Key{}, Key{}, false, nil
	}
	return NewKey(*mn), NewKey(*mx), true, nil
}

// ahead adds n: integer keys are dense enough that n keys are about n rows.
func (intShape) ahead(k Key, n, _ int64) (Key, error) {
	v, err := intOf(k)
	if err != nil {
		return Key{}, err
	}
	if n > 0 && v > math.MaxInt64-n {
		return Int(math.MaxInt64), nil
	}
	return Int(v + n), nil
}

func (intShape) halve(lo, hi Key) (last, next Key, ok bool, err error) {
	a, err := intOf(lo)
	if err != nil {
		return Key{}, Key{}, false, err
	}
	b, err := intOf(hi)
	if err != nil {
		return Key{}, Key{}, false, err
	}
	if a >= b {
		return Key{}, Key{}, false, nil
	}
	mid := a + int64((uint64(b)-uint64(a))/2) // the width can exceed MaxInt64
	return Int(mid), Int(mid + 1), true, nil
}

func (intShape) sample(r Range, n int) ([]Key, error) {
	lo, err := intOf(r.Lo)
	if err != nil {
		return nil, err
	}
	hi, err := intOf(r.Hi)
	if err != nil {
		return nil, err
	}
	out := make([]Key, n)
	for i := range out {
		// Width in uint64: [MinInt64, MaxInt64] does not fit an int64.
		w := uint64(hi) - uint64(lo)
		off := uint64(0)
		if w > 0 {
			off = rand.Uint64N(w)
		}
		out[i] = Int(int64(uint64(lo) + off))
	}
	return out, nil
}

// slice cuts by arithmetic; the row estimate plays no part.
func (intShape) slice(from, to Key, span, _ int64) (Slicing, error) {
	a, err := intOf(from)
	if err != nil {
		return Slicing{}, err
	}
	b, err := intOf(to)
	if err != nil {
		return Slicing{}, err
	}
	return intSlicing(a, b, span)
}

// intOf is the int64 of a one-column integer key.
func intOf(k Key) (int64, error) {
	if len(k.vals) != 1 {
		return 0, fmt.Errorf("key %s has %d columns, an integer key has 1: %w", k, len(k.vals), ErrBadKey)
	}
	v, err := strconv.ParseInt(k.vals[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("key %q is not an integer: %w", k.vals[0], ErrBadKey)
	}
	return v, nil
}

// shapeInt is the integer shape, sliced by arithmetic.
const shapeInt = "int"

// intSlices is the integer slicing: [from, to] in ranges of span keys; n
// is the number of ranges, checked when the slicing was made.
type intSlices struct {
	from, to, span, n int64
}

func intSlicing(from, to, span int64) (Slicing, error) {
	n, err := count(from, to, span)
	if err != nil {
		return Slicing{}, err
	}
	return Slicing{impl: intSlices{from: from, to: to, span: span, n: n}}, nil
}

func decodeIntSlicing(st stored) (Slicing, error) {
	from, err := intOf(st.From)
	if err != nil {
		return Slicing{}, err
	}
	to, err := intOf(st.To)
	if err != nil {
		return Slicing{}, err
	}
	return intSlicing(from, to, st.Span)
}

func (sl intSlices) ranges() int64          { return sl.n }
func (sl intSlices) taskSpan() int64        { return sl.span }
func (sl intSlices) bounds() (from, to Key) { return Int(sl.from), Int(sl.to) }

func (sl intSlices) at(id int64) (Range, error) {
	lo, hi, err := at(sl.from, sl.to, sl.span, id)
	if err != nil {
		return Range{}, err
	}
	return Range{ID: id, Lo: Int(lo), Hi: Int(hi)}, nil
}

func (sl intSlices) containing(k Key) (int64, bool) {
	v, err := intOf(k)
	if err != nil {
		return 0, false
	}
	return indexOf(sl.from, sl.to, sl.span, v)
}

func (sl intSlices) holds(r Range, k Key) bool {
	v, err1 := intOf(k)
	lo, err2 := intOf(r.Lo)
	hi, err3 := intOf(r.Hi)
	return err1 == nil && err2 == nil && err3 == nil && lo <= v && v <= hi
}

func (sl intSlices) reslice(span int64) (Slicing, error) { return intSlicing(sl.from, sl.to, span) }

func (sl intSlices) stored() stored {
	return stored{Shape: shapeInt, From: Int(sl.from), To: Int(sl.to), Span: sl.span}
}
