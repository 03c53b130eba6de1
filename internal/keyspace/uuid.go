package keyspace

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"regexp"

	"github.com/jackc/pgx/v5"
)

// The uuid shape: one uuid column. A uuid is a 128-bit number in the order
// of PostgreSQL's uuid btree (uuid_cmp compares the 16 bytes as unsigned,
// most significant first), so range math is integer math on 128 bits, done
// in math/big: it runs once per range task or slicing, never per row.
// Keys hold PostgreSQL's canonical text (lowercase, dashed), and values are
// bound as that text, which PostgreSQL reads as the uuid its placeholder
// compares with.

// shapeUUID is the uuid shape, sliced into equal shares of the 128-bit
// space.
const shapeUUID = "uuid"

// uuidUnknownRanges is how many ranges a uuid key gets when the table's
// row estimate is unknown (reltuples is -1 until the first VACUUM or
// ANALYZE, 0 when it was analyzed empty): enough for a small fleet to work
// in parallel, few enough that an empty table costs nothing.
const uuidUnknownRanges = 16

type uuidShape struct{}

func (uuidShape) name() string { return shapeUUID }

func (uuidShape) origin() Key { return NewKey(uuidNil) }

func (uuidShape) bind(k Key) ([]any, error) {
	if _, err := uuidOf(k); err != nil {
		return nil, err
	}
	return []any{k.vals[0]}, nil
}

func (uuidShape) anyOf(cols []string, first int) string { return singleAnyOf(cols, first) }

func (uuidShape) selectList(cols []string) string { return quoteList(cols, "") }

func (uuidShape) array(keys []Key) ([]any, error) {
	out := make([]string, len(keys))
	for i, k := range keys {
		if _, err := uuidOf(k); err != nil {
			return nil, err
		}
		out[i] = k.vals[0]
	}
	return []any{out}, nil
}

func (uuidShape) collect(rows pgx.Rows) ([]Key, error) { return collectText(rows) }

// extremes reads the first and last key of the index: PostgreSQL before 18
// has no min or max aggregate for uuid.
func (uuidShape) extremes(ctx context.Context, q Querier, cols []string, table string) (lo, hi Key, ok bool, err error) {
	return indexExtremes(ctx, q, cols, table)
}

// ahead adds n rows' share of the 128-bit space: random (v4) uuids spread
// evenly over it, so n of rows keys span about n/rows of it.
func (uuidShape) ahead(k Key, n, rows int64) (Key, error) {
	v, err := uuidOf(k)
	if err != nil {
		return Key{}, err
	}
	step := new(big.Int).Lsh(big.NewInt(max(n, 0)), 128)
	step.Div(step, big.NewInt(max(rows, 1)))
	v.Add(v, step)
	if v.Cmp(uuidTop) > 0 {
		v.Set(uuidTop)
	}
	return uuidKey(v), nil
}

func (uuidShape) halve(lo, hi Key) (last, next Key, ok bool, err error) {
	a, err := uuidOf(lo)
	if err != nil {
		return Key{}, Key{}, false, err
	}
	b, err := uuidOf(hi)
	if err != nil {
		return Key{}, Key{}, false, err
	}
	if a.Cmp(b) >= 0 {
		return Key{}, Key{}, false, nil
	}
	mid := new(big.Int).Sub(b, a)
	mid.Rsh(mid, 1).Add(mid, a)
	return uuidKey(mid), uuidKey(new(big.Int).Add(mid, one)), true, nil
}

func (uuidShape) sample(r Range, n int) ([]Key, error) {
	lo, err := uuidOf(r.Lo)
	if err != nil {
		return nil, err
	}
	hi, err := uuidOf(r.Hi)
	if err != nil {
		return nil, err
	}
	keys := new(big.Int).Sub(hi, lo)
	keys.Add(keys, one)
	out := make([]Key, n)
	for i := range out {
		// 128 random bits modulo the width: the bias is below 2⁻⁶⁴ for any
		// range wider than that, and no spot check needs better.
		v := new(big.Int).SetUint64(rand.Uint64())
		v.Lsh(v, 64).Or(v, new(big.Int).SetUint64(rand.Uint64()))
		v.Mod(v, keys).Add(v, lo)
		out[i] = uuidKey(v)
	}
	return out, nil
}

// slice cuts [from, to] into n ranges of equal width, n being rows/span
// rounded up: about span rows each when the uuids are random.
func (uuidShape) slice(from, to Key, span, rows int64) (Slicing, error) {
	sl, err := newUUIDSlices(from, to, span, rows, uuidRangeCount(rows, span))
	if err != nil {
		return Slicing{}, err
	}
	return Slicing{impl: sl}, nil
}

// uuidSlices is the uuid slicing: [from, to] in n ranges of equal width
// (to within one key). Range i starts at from + ⌊i·K/n⌋, K being the
// number of keys in [from, to], and ends right before range i+1 starts.
// The split points are fixed by the stored from, to and n, so every later
// start, worker and verify rebuilds them exactly, in O(1) per range.
type uuidSlices struct {
	from, to        Key
	span, rows, n   int64
	lo, keys, count *big.Int // from, K and n as numbers
}

func newUUIDSlices(from, to Key, span, rows, n int64) (uuidSlices, error) {
	if span < 1 {
		return uuidSlices{}, fmt.Errorf("task_span %d: must be at least 1", span)
	}
	a, err := uuidOf(from)
	if err != nil {
		return uuidSlices{}, err
	}
	b, err := uuidOf(to)
	if err != nil {
		return uuidSlices{}, err
	}
	if a.Cmp(b) > 0 {
		return uuidSlices{}, fmt.Errorf("range [%s,%s] is empty: from is above to", from, to)
	}
	keys := new(big.Int).Sub(b, a)
	keys.Add(keys, one)
	if keys.IsInt64() && keys.Int64() < n {
		n = keys.Int64() // every range holds at least one key
	}
	if n < 1 {
		return uuidSlices{}, fmt.Errorf("uuid slicing of [%s,%s] into %d ranges: want at least 1", from, to, n)
	}
	return uuidSlices{from: from, to: to, span: span, rows: rows, n: n, lo: a, keys: keys, count: big.NewInt(n)}, nil
}

func decodeUUIDSlicing(st stored) (Slicing, error) {
	sl, err := newUUIDSlices(st.From, st.To, st.Span, st.Rows, st.Ranges)
	if err != nil {
		return Slicing{}, err
	}
	return Slicing{impl: sl}, nil
}

func (sl uuidSlices) ranges() int64          { return sl.n }
func (sl uuidSlices) taskSpan() int64        { return sl.span }
func (sl uuidSlices) bounds() (from, to Key) { return sl.from, sl.to }

func (sl uuidSlices) at(id int64) (Range, error) {
	if id < 0 || id >= sl.n {
		return Range{}, fmt.Errorf("range %d out of bounds: the job has %d ranges", id, sl.n)
	}
	hi := sl.start(id + 1)
	hi.Sub(hi, one)
	return Range{ID: id, Lo: uuidKey(sl.start(id)), Hi: uuidKey(hi)}, nil
}

func (sl uuidSlices) containing(k Key) (int64, bool) {
	v, err := uuidOf(k)
	if err != nil {
		return 0, false
	}
	d := new(big.Int).Sub(v, sl.lo)
	if d.Sign() < 0 || d.Cmp(sl.keys) >= 0 {
		return 0, false
	}
	// ⌊d·n/K⌋ is the range, or the one before it when the floor of range
	// i+1's start lands exactly on d.
	i := new(big.Int).Mul(d, sl.count)
	id := i.Div(i, sl.keys).Int64()
	if id+1 < sl.n && sl.start(id+1).Cmp(v) <= 0 {
		id++
	}
	return id, true
}

func (sl uuidSlices) holds(r Range, k Key) bool {
	v, err1 := uuidOf(k)
	lo, err2 := uuidOf(r.Lo)
	hi, err3 := uuidOf(r.Hi)
	return err1 == nil && err2 == nil && err3 == nil && lo.Cmp(v) <= 0 && v.Cmp(hi) <= 0
}

func (sl uuidSlices) reslice(span int64) (Slicing, error) {
	out, err := newUUIDSlices(sl.from, sl.to, span, sl.rows, uuidRangeCount(sl.rows, span))
	if err != nil {
		return Slicing{}, err
	}
	return Slicing{impl: out}, nil
}

func (sl uuidSlices) stored() stored {
	return stored{Shape: shapeUUID, From: sl.from, To: sl.to, Span: sl.span, Rows: sl.rows, Ranges: sl.n}
}

// start is the first key of range i as a number (i = n gives to + 1).
func (sl uuidSlices) start(i int64) *big.Int {
	v := new(big.Int).Mul(big.NewInt(i), sl.keys)
	v.Div(v, sl.count)
	return v.Add(v, sl.lo)
}

// uuidRangeCount is how many ranges of about span rows hold rows rows.
func uuidRangeCount(rows, span int64) int64 {
	if rows <= 0 || span < 1 {
		return uuidUnknownRanges
	}
	return (rows-1)/span + 1
}

// uuidOf is the 128-bit number of a one-column uuid key in canonical text.
func uuidOf(k Key) (*big.Int, error) {
	if len(k.vals) != 1 {
		return nil, fmt.Errorf("key %s has %d columns, a uuid key has 1: %w", k, len(k.vals), ErrBadKey)
	}
	s := k.vals[0]
	if !uuidText.MatchString(s) {
		return nil, fmt.Errorf("key %q is not a uuid in canonical form: %w", s, ErrBadKey)
	}
	v, _ := new(big.Int).SetString(s[0:8]+s[9:13]+s[14:18]+s[19:23]+s[24:36], 16)
	return v, nil
}

// uuidKey is the key of a 128-bit number, in PostgreSQL's canonical text.
func uuidKey(v *big.Int) Key {
	h := fmt.Sprintf("%032x", v)
	return NewKey(h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32])
}

// uuidText is a uuid as PostgreSQL prints it. Only this form is a key, so a
// key's text and its value are one-to-one (Key.Equal compares text).
var uuidText = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// uuidNil is the smallest uuid.
const uuidNil = "00000000-0000-0000-0000-000000000000"

var (
	one     = big.NewInt(1)
	uuidTop = new(big.Int).Sub(new(big.Int).Lsh(one, 128), one) // ffffffff-…-ffffffffffff
)
