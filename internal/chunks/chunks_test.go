package chunks

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSlice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		from, to, span int64
		want           []Range
	}{
		{"one key", 5, 5, 10, []Range{{0, 5, 5}}},
		{"exact", 1, 20, 10, []Range{{0, 1, 10}, {1, 11, 20}}},
		{"cut last", 1, 25, 10, []Range{{0, 1, 10}, {1, 11, 20}, {2, 21, 25}}},
		{"negative", -5, 4, 5, []Range{{0, -5, -1}, {1, 0, 4}}},
		{"top of int64", math.MaxInt64 - 2, math.MaxInt64, 2, []Range{{0, math.MaxInt64 - 2, math.MaxInt64 - 1}, {1, math.MaxInt64, math.MaxInt64}}},
		{"bottom of int64", math.MinInt64, math.MinInt64 + 1, 5, []Range{{0, math.MinInt64, math.MinInt64 + 1}}},
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
	n, err := Count(math.MinInt64, math.MaxInt64, 1)
	require.Error(t, err, "2^64 ranges must not fit, got %d", n)
}

func TestNext(t *testing.T) {
	t.Parallel()
	n, ok := Next(41)
	require.True(t, ok)
	require.Equal(t, int64(42), n)
	_, ok = Next(math.MaxInt64)
	require.False(t, ok)
}

// FuzzSlice checks that slices cover [from,to] exactly once: each range
// starts right after the previous one ends, the first starts at from and the
// last ends at to, with no overflow at the int64 bounds.
func FuzzSlice(f *testing.F) {
	f.Add(int64(1), int64(100), int64(7))
	f.Add(int64(math.MinInt64), int64(math.MinInt64+1000), int64(3))
	f.Add(int64(math.MaxInt64-1000), int64(math.MaxInt64), int64(1000))
	f.Add(int64(-3), int64(3), int64(1))
	f.Fuzz(func(t *testing.T, from, to, span int64) {
		if span < 1 || from > to {
			return
		}
		n, err := Count(from, to, span)
		if err != nil || n > 10_000 {
			return
		}
		prevHi := int64(0)
		for i := int64(0); i < n; i++ {
			r, err := At(from, to, span, i)
			if err != nil {
				t.Fatalf("At(%d): %v", i, err)
			}
			if r.Lo > r.Hi {
				t.Fatalf("range %v is inverted", r)
			}
			if i == 0 && r.Lo != from {
				t.Fatalf("first range %v does not start at %d", r, from)
			}
			if i > 0 && (prevHi == math.MaxInt64 || r.Lo != prevHi+1) {
				t.Fatalf("range %v does not follow %d", r, prevHi)
			}
			if uint64(r.Hi)-uint64(r.Lo) >= uint64(span) {
				t.Fatalf("range %v is wider than span %d", r, span)
			}
			for _, k := range []int64{r.Lo, r.Hi} {
				if got, ok := IndexOf(from, to, span, k); !ok || got != i {
					t.Fatalf("IndexOf(%d) = %d, %v; want range %d %v", k, got, ok, i, r)
				}
			}
			prevHi = r.Hi
		}
		if prevHi != to {
			t.Fatalf("last range ends at %d, want %d", prevHi, to)
		}
		if from > math.MinInt64 {
			if _, ok := IndexOf(from, to, span, from-1); ok {
				t.Fatalf("IndexOf(%d) below from %d found a range", from-1, from)
			}
		}
		if to < math.MaxInt64 {
			if _, ok := IndexOf(from, to, span, to+1); ok {
				t.Fatalf("IndexOf(%d) above to %d found a range", to+1, to)
			}
		}
	})
}

// slice returns the ranges of span keys covering [from,to] exactly once, in
// key order, built from Count and At as the enqueuer walks them. The last
// range is cut at to.
func slice(from, to, span int64) ([]Range, error) {
	n, err := Count(from, to, span)
	if err != nil {
		return nil, err
	}
	out := make([]Range, 0, n)
	for i := int64(0); i < n; i++ {
		r, err := At(from, to, span, i)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
