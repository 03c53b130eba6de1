package keyspace

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// ir is a range of integer keys, for short tables.
func ir(id, lo, hi int64) Range { return Range{ID: id, Lo: Int(lo), Hi: Int(hi)} }

func TestSlice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		from, to, span int64
		want           []Range
	}{
		{"one key", 5, 5, 10, []Range{ir(0, 5, 5)}},
		{"exact", 1, 20, 10, []Range{ir(0, 1, 10), ir(1, 11, 20)}},
		{"cut last", 1, 25, 10, []Range{ir(0, 1, 10), ir(1, 11, 20), ir(2, 21, 25)}},
		{"negative", -5, 4, 5, []Range{ir(0, -5, -1), ir(1, 0, 4)}},
		{"top of int64", math.MaxInt64 - 2, math.MaxInt64, 2, []Range{ir(0, math.MaxInt64-2, math.MaxInt64-1), ir(1, math.MaxInt64, math.MaxInt64)}},
		{"bottom of int64", math.MinInt64, math.MinInt64 + 1, 5, []Range{ir(0, math.MinInt64, math.MinInt64+1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := slice(tc.from, tc.to, tc.span)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestSliceRejects(t *testing.T) {
	t.Parallel()
	_, err := slice(10, 1, 5)
	require.ErrorContains(t, err, "from is above to")
	_, err = slice(1, 10, 0)
	require.ErrorContains(t, err, "task_span")
	n, err := count(math.MinInt64, math.MaxInt64, 1)
	require.Error(t, err, "2^64 ranges must not fit, got %d", n)
	sp, err := New("id")
	require.NoError(t, err)
	_, err = sp.Slice(NewKey("abc"), Int(3), 1)
	require.ErrorIs(t, err, ErrBadKey)
}

func TestSlicingEncoding(t *testing.T) {
	t.Parallel()
	sp, err := New("id")
	require.NoError(t, err)
	sl, err := sp.Slice(Int(math.MinInt64), Int(math.MaxInt64), math.MaxInt64)
	require.NoError(t, err)
	require.Equal(t, `{"shape":"int","from":-9223372036854775808,"to":9223372036854775807,"span":9223372036854775807}`, sl.Encode())
	back, err := DecodeSlicing(sl.Encode())
	require.NoError(t, err)
	require.Equal(t, sl, back)

	legacy, err := LegacySlicing("1", "100", "10")
	require.NoError(t, err)
	require.Equal(t, int64(10), legacy.Ranges())
	from, to := legacy.Bounds()
	require.Equal(t, "1", from.String())
	require.Equal(t, "100", to.String())

	_, err = LegacySlicing("garbage", "1", "1")
	require.ErrorContains(t, err, "not a number")
	_, err = DecodeSlicing(`{"shape":"interval"}`)
	require.ErrorIs(t, err, ErrShape)
}

func TestHalve(t *testing.T) {
	t.Parallel()
	sp, err := New("id")
	require.NoError(t, err)
	tests := []struct {
		name   string
		lo, hi int64
		ok     bool
		a, b   Range
	}{
		{"even", 1, 10, true, ir(0, 1, 5), ir(0, 6, 10)},
		{"two keys", 7, 8, true, ir(0, 7, 7), ir(0, 8, 8)},
		{"one key", 7, 7, false, Range{}, Range{}},
		{"whole int64", math.MinInt64, math.MaxInt64, true, ir(0, math.MinInt64, -1), ir(0, 0, math.MaxInt64)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b, ok, err := sp.Halve(Int(tc.lo), Int(tc.hi))
			require.NoError(t, err)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.a, a)
			require.Equal(t, tc.b, b)
		})
	}
}

func TestSample(t *testing.T) {
	t.Parallel()
	sp, err := New("id")
	require.NoError(t, err)
	sl, err := sp.Slice(Int(math.MinInt64), Int(math.MaxInt64), math.MaxInt64)
	require.NoError(t, err)
	for _, r := range []Range{ir(0, 5, 5), ir(0, 1, 3), ir(0, math.MinInt64, math.MaxInt64)} {
		keys, err := sp.Sample(r, 20)
		require.NoError(t, err)
		require.Len(t, keys, 20)
		for _, k := range keys {
			require.True(t, sl.Holds(r, k), "%v outside %v", k, r)
		}
	}
}

func TestPredicates(t *testing.T) {
	t.Parallel()
	sp, err := New("id")
	require.NoError(t, err)
	require.Equal(t, `"id"`, sp.Columns())
	require.Equal(t, `"id" BETWEEN $1 AND $2`, sp.InRange(1))
	require.Equal(t, `"id" >= $1 AND "id" <= $2`, sp.From(1))
	require.Equal(t, `"id" > $3 AND "id" <= $4`, sp.After(3))
	require.Equal(t, `"id" = ANY($2)`, sp.AnyOf(2))
	args, err := sp.Args(Int(1), Int(-2))
	require.NoError(t, err)
	require.Equal(t, []any{int64(1), int64(-2)}, args)
	_, err = sp.Args(NewKey("x"))
	require.ErrorIs(t, err, ErrBadKey)

	// Several columns compare row values: one index range scan, never an
	// OR expansion.
	two := Space{cols: []string{"tenant_id", "Id"}}
	require.Equal(t, `("tenant_id", "Id") > ($1, $2) AND ("tenant_id", "Id") <= ($3, $4)`, two.After(1))
	require.Equal(t, `("tenant_id", "Id") >= ($5, $6) AND ("tenant_id", "Id") <= ($7, $8)`, two.InRange(5))

	_, err = New()
	require.ErrorIs(t, err, ErrShape)
}

// FuzzSlice checks that slices cover [from,to] exactly once: each range
// starts right after the previous one ends, the first starts at from and the
// last ends at to, with no overflow at the int64 bounds; Containing finds
// each range from its own bounds and nothing outside the space.
func FuzzSlice(f *testing.F) {
	f.Add(int64(1), int64(100), int64(7))
	f.Add(int64(math.MinInt64), int64(math.MinInt64+1000), int64(3))
	f.Add(int64(math.MaxInt64-1000), int64(math.MaxInt64), int64(1000))
	f.Add(int64(-3), int64(3), int64(1))
	f.Fuzz(func(t *testing.T, from, to, span int64) {
		if span < 1 || from > to {
			return
		}
		sl, err := intSlicing(from, to, span)
		if err != nil || sl.Ranges() > 10_000 {
			return
		}
		if back, err := DecodeSlicing(sl.Encode()); err != nil || back != sl {
			t.Fatalf("slicing %s does not round-trip: %v", sl.Encode(), err)
		}
		prevHi := int64(0)
		for i := int64(0); i < sl.Ranges(); i++ {
			r, err := sl.Range(i)
			if err != nil {
				t.Fatalf("Range(%d): %v", i, err)
			}
			lo, _ := intOf(r.Lo)
			hi, _ := intOf(r.Hi)
			if lo > hi {
				t.Fatalf("range %v is inverted", r)
			}
			if i == 0 && lo != from {
				t.Fatalf("first range %v does not start at %d", r, from)
			}
			if i > 0 && (prevHi == math.MaxInt64 || lo != prevHi+1) {
				t.Fatalf("range %v does not follow %d", r, prevHi)
			}
			if uint64(hi)-uint64(lo) >= uint64(span) {
				t.Fatalf("range %v is wider than span %d", r, span)
			}
			for _, k := range []Key{r.Lo, r.Hi} {
				if got, ok := sl.Containing(k); !ok || got != i {
					t.Fatalf("Containing(%v) = %d, %v; want range %d %v", k, got, ok, i, r)
				}
			}
			prevHi = hi
		}
		if prevHi != to {
			t.Fatalf("last range ends at %d, want %d", prevHi, to)
		}
		if from > math.MinInt64 {
			if _, ok := sl.Containing(Int(from - 1)); ok {
				t.Fatalf("Containing(%d) below from %d found a range", from-1, from)
			}
		}
		if to < math.MaxInt64 {
			if _, ok := sl.Containing(Int(to + 1)); ok {
				t.Fatalf("Containing(%d) above to %d found a range", to+1, to)
			}
		}
	})
}

// slice returns the ranges of span keys covering [from,to] exactly once, in
// key order, as the enqueuer walks them. The last range is cut at to.
func slice(from, to, span int64) ([]Range, error) {
	sl, err := intSlicing(from, to, span)
	if err != nil {
		return nil, err
	}
	out := make([]Range, 0, sl.Ranges())
	for i := int64(0); i < sl.Ranges(); i++ {
		r, err := sl.Range(i)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
