package keyspace

import (
	"encoding/binary"
	"math/big"
	"testing"

	"github.com/stretchr/testify/require"
)

const (
	uuidMin = "00000000-0000-0000-0000-000000000000"
	uuidMax = "ffffffff-ffff-ffff-ffff-ffffffffffff"
)

// uuidSpace is a uuid Space with a row estimate, as Open builds it.
func uuidSpace(rows int64) Space { return Space{cols: []string{"id"}, sh: uuidShape{}, rows: rows} }

// u is the uuid key of two 64-bit halves.
func u(hi, lo uint64) Key {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return uuidKey(new(big.Int).SetBytes(b[:]))
}

func TestUUIDSlice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		from, to   Key
		span, rows int64
		want       []Range
	}{
		{"whole space in 4", NewKey(uuidMin), NewKey(uuidMax), 3, 10, []Range{
			{ID: 0, Lo: NewKey(uuidMin), Hi: NewKey("3fffffff-ffff-ffff-ffff-ffffffffffff")},
			{ID: 1, Lo: NewKey("40000000-0000-0000-0000-000000000000"), Hi: NewKey("7fffffff-ffff-ffff-ffff-ffffffffffff")},
			{ID: 2, Lo: NewKey("80000000-0000-0000-0000-000000000000"), Hi: NewKey("bfffffff-ffff-ffff-ffff-ffffffffffff")},
			{ID: 3, Lo: NewKey("c0000000-0000-0000-0000-000000000000"), Hi: NewKey(uuidMax)},
		}},
		{"fewer keys than ranges", u(0, 5), u(0, 6), 1, 100, []Range{{ID: 0, Lo: u(0, 5), Hi: u(0, 5)}, {ID: 1, Lo: u(0, 6), Hi: u(0, 6)}}},
		{"one key", u(7, 7), u(7, 7), 10, 1000, []Range{{ID: 0, Lo: u(7, 7), Hi: u(7, 7)}}},
		{"unknown estimate", NewKey(uuidMin), NewKey(uuidMax), 1000, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sl, err := uuidSpace(tc.rows).Slice(tc.from, tc.to, tc.span)
			require.NoError(t, err)
			got := ranges(t, sl)
			if tc.want == nil {
				require.Len(t, got, uuidUnknownRanges)
				return
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestUUIDSliceRejects(t *testing.T) {
	t.Parallel()
	sp := uuidSpace(10)
	_, err := sp.Slice(u(0, 9), u(0, 1), 5)
	require.ErrorContains(t, err, "from is above to")
	_, err = sp.Slice(u(0, 1), u(0, 9), 0)
	require.ErrorContains(t, err, "task_span")
	_, err = sp.Slice(Int(1), u(0, 9), 1)
	require.ErrorIs(t, err, ErrBadKey)
	_, err = sp.Args(NewKey("0000000A-0000-0000-0000-000000000000"))
	require.ErrorIs(t, err, ErrBadKey, "only PostgreSQL's canonical (lowercase) text is a key")
}

func TestUUIDSlicingEncoding(t *testing.T) {
	t.Parallel()
	sl, err := uuidSpace(250).Slice(NewKey(uuidMin), NewKey(uuidMax), 100)
	require.NoError(t, err)
	require.Equal(t, `{"shape":"uuid","from":"`+uuidMin+`","to":"`+uuidMax+`","span":100,"rows":250,"ranges":3}`, sl.Encode())
	back, err := DecodeSlicing(sl.Encode())
	require.NoError(t, err)
	require.Equal(t, ranges(t, sl), ranges(t, back))
	require.Equal(t, int64(100), back.Span())
	from, to := back.Bounds()
	require.Equal(t, []Key{NewKey(uuidMin), NewKey(uuidMax)}, []Key{from, to})
	// Verify's chunks: the same space by the same row estimate.
	fine, err := back.Reslice(10)
	require.NoError(t, err)
	require.Equal(t, int64(25), fine.Ranges())
	_, err = DecodeSlicing(`{"shape":"uuid","from":"x","to":"` + uuidMax + `","span":1,"ranges":1}`)
	require.ErrorIs(t, err, ErrBadKey)
}

func TestUUIDHalve(t *testing.T) {
	t.Parallel()
	sp := uuidSpace(0)
	first, second, ok, err := sp.Halve(NewKey(uuidMin), NewKey(uuidMax))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, Range{Lo: NewKey(uuidMin), Hi: NewKey("7fffffff-ffff-ffff-ffff-ffffffffffff")}, first)
	require.Equal(t, Range{Lo: NewKey("80000000-0000-0000-0000-000000000000"), Hi: NewKey(uuidMax)}, second)
	first, second, ok, err = sp.Halve(u(1, 1<<63), u(2, 1))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, Range{Lo: u(1, 1<<63), Hi: u(1, 1<<63+(1<<62))}, first)
	require.Equal(t, Range{Lo: u(1, 1<<63+(1<<62)+1), Hi: u(2, 1)}, second)
	_, _, ok, err = sp.Halve(u(3, 3), u(3, 3))
	require.NoError(t, err)
	require.False(t, ok, "one key cannot be split")
	_, _, ok, _ = sp.Halve(u(3, 4), u(3, 3))
	require.False(t, ok)
}

func TestUUIDAheadSampleInverted(t *testing.T) {
	t.Parallel()
	// 4 rows spread over the space: 1 row ahead is a quarter of it.
	got, err := uuidSpace(4).Ahead(NewKey(uuidMin), 1)
	require.NoError(t, err)
	require.Equal(t, NewKey("40000000-0000-0000-0000-000000000000"), got)
	got, err = uuidSpace(4).Ahead(NewKey("f0000000-0000-0000-0000-000000000000"), 1)
	require.NoError(t, err)
	require.Equal(t, NewKey(uuidMax), got, "saturates at the top")

	r := Range{Lo: u(5, 1<<63), Hi: u(6, 2)}
	keys, err := uuidSpace(0).Sample(r, 50)
	require.NoError(t, err)
	require.Len(t, keys, 50)
	var sl uuidSlices
	for _, k := range keys {
		require.True(t, sl.holds(r, k), "sample %s outside %v", k, r)
	}
	keys, err = uuidSpace(0).Sample(Range{Lo: u(5, 5), Hi: u(5, 5)}, 2)
	require.NoError(t, err)
	require.Equal(t, []Key{u(5, 5), u(5, 5)}, keys)

	require.Equal(t, NewKey(uuidMin), uuidSpace(0).Origin())
	require.Equal(t, Int(0), Space{}.Origin())

	require.True(t, Inverted(u(0, 2), u(0, 1)))
	require.False(t, Inverted(u(0, 1), u(0, 1)))
	require.False(t, Inverted(u(0, 1), u(1, 0)))
}

// FuzzUUIDSlice checks that a uuid slicing covers [from, to] exactly once:
// the first range starts at from, each next one right after the previous
// one ends, the last ends at to, widths differ by at most one key,
// Containing finds each range from its bounds and nothing outside, and the
// slicing round-trips through Encode.
func FuzzUUIDSlice(f *testing.F) {
	f.Add(uint64(0), uint64(0), ^uint64(0), ^uint64(0), int64(1000), int64(7))
	f.Add(uint64(0), uint64(5), uint64(0), uint64(6), int64(3), int64(1))
	f.Add(uint64(1), ^uint64(0), uint64(2), uint64(0), int64(9), int64(2))
	f.Add(uint64(7), uint64(1), uint64(7), uint64(1), int64(1), int64(1))
	f.Fuzz(func(t *testing.T, fh, fl, th, tl uint64, rows, span int64) {
		from, to := u(fh, fl), u(th, tl)
		if span < 1 || rows < 0 || Inverted(from, to) {
			return
		}
		sl, err := uuidSpace(rows).Slice(from, to, span)
		if err != nil {
			t.Fatalf("slice [%s,%s]: %v", from, to, err)
		}
		if sl.Ranges() > 2000 {
			return
		}
		back, err := DecodeSlicing(sl.Encode())
		if err != nil || back.Encode() != sl.Encode() {
			t.Fatalf("slicing %s does not round-trip: %v", sl.Encode(), err)
		}
		checkUUIDCover(t, sl, from, to)
	})
}

// checkUUIDCover asserts that the ranges of sl cover [from, to] once.
func checkUUIDCover(t *testing.T, sl Slicing, from, to Key) {
	t.Helper()
	var prevHi, minW, maxW *big.Int
	for i := range sl.Ranges() {
		r, err := sl.Range(i)
		if err != nil {
			t.Fatalf("Range(%d): %v", i, err)
		}
		lo, _ := uuidOf(r.Lo)
		hi, _ := uuidOf(r.Hi)
		if lo.Cmp(hi) > 0 {
			t.Fatalf("range %v is inverted", r)
		}
		if i == 0 && !r.Lo.Equal(from) {
			t.Fatalf("first range %v does not start at %s", r, from)
		}
		if i > 0 && new(big.Int).Add(prevHi, one).Cmp(lo) != 0 {
			t.Fatalf("range %v does not follow %x", r, prevHi)
		}
		w := new(big.Int).Sub(hi, lo)
		if minW == nil || w.Cmp(minW) < 0 {
			minW = w
		}
		if maxW == nil || w.Cmp(maxW) > 0 {
			maxW = w
		}
		for _, k := range []Key{r.Lo, r.Hi} {
			if got, ok := sl.Containing(k); !ok || got != i {
				t.Fatalf("Containing(%v) = %d, %v; want range %d %v", k, got, ok, i, r)
			}
		}
		prevHi = hi
	}
	if !uuidKey(prevHi).Equal(to) {
		t.Fatalf("last range ends at %x, want %s", prevHi, to)
	}
	if new(big.Int).Sub(maxW, minW).Cmp(one) > 0 {
		t.Fatalf("range widths differ by more than one key: %x..%x", minW, maxW)
	}
	lo, _ := uuidOf(from)
	hi, _ := uuidOf(to)
	if lo.Sign() > 0 {
		if _, ok := sl.Containing(uuidKey(lo.Sub(lo, one))); ok {
			t.Fatalf("Containing below from %s found a range", from)
		}
	}
	if hi.Cmp(uuidTop) < 0 {
		if _, ok := sl.Containing(uuidKey(hi.Add(hi, one))); ok {
			t.Fatalf("Containing above to %s found a range", to)
		}
	}
}

// FuzzUUIDKeyRoundTrip: any uuid key encodes losslessly for Redis and JSON
// and keeps its value.
func FuzzUUIDKeyRoundTrip(f *testing.F) {
	f.Add(uint64(0), uint64(0))
	f.Add(^uint64(0), ^uint64(0))
	f.Add(uint64(0x0123456789abcdef), uint64(0xfedcba9876543210))
	f.Fuzz(func(t *testing.T, hi, lo uint64) {
		k := u(hi, lo)
		back, err := DecodeKey(k.Encode())
		if err != nil || !back.Equal(k) {
			t.Fatalf("key %s encoded %s decodes to %v: %v", k, k.Encode(), back, err)
		}
		b, err := back.MarshalJSON()
		if err != nil || string(b) != k.Encode() {
			t.Fatalf("key %s marshals to %s, encodes to %s", k, b, k.Encode())
		}
		v, err := uuidOf(back)
		want := new(big.Int).SetUint64(hi)
		want.Lsh(want, 64).Or(want, new(big.Int).SetUint64(lo))
		if err != nil || v.Cmp(want) != 0 {
			t.Fatalf("key %s has value %x, want %x: %v", k, v, want, err)
		}
	})
}

// ranges lists every range of sl in order.
func ranges(t *testing.T, sl Slicing) []Range {
	t.Helper()
	out := make([]Range, 0, sl.Ranges())
	for i := range sl.Ranges() {
		r, err := sl.Range(i)
		require.NoError(t, err)
		out = append(out, r)
	}
	return out
}
