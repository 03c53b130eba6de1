package keyspace

import (
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// textSpace is a text Space with a histogram and a row estimate, as Open
// builds it.
func textSpace(rows int64, hist ...string) Space {
	sh := orderedShape{types: []string{"text"}}
	for _, h := range hist {
		sh.hist = append(sh.hist, NewKey(h))
	}
	return Space{cols: []string{"k"}, sh: sh, rows: rows}
}

func TestTextSlice(t *testing.T) {
	t.Parallel()
	hist := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"}
	tests := []struct {
		name       string
		rows, span int64
		hist       []string
		want       []Range
	}{
		{"four ranges from ten buckets", 100, 25, hist, []Range{
			{ID: 0, Lo: NewKey("Ä"), Hi: NewKey("c")},
			{ID: 1, Lo: NewKey("c"), Hi: NewKey("f"), After: true},
			{ID: 2, Lo: NewKey("f"), Hi: NewKey("h"), After: true},
			{ID: 3, Lo: NewKey("h"), Hi: NewKey("日本"), After: true},
		}},
		{"more ranges than buckets", 1000, 1, []string{"a", "m", "z"}, []Range{
			{ID: 0, Lo: NewKey("Ä"), Hi: NewKey("m")},
			{ID: 1, Lo: NewKey("m"), Hi: NewKey("日本"), After: true},
		}},
		{"no histogram", 1000, 10, nil, []Range{{ID: 0, Lo: NewKey("Ä"), Hi: NewKey("日本")}}},
		{"unknown estimate", 0, 10, hist, []Range{{ID: 0, Lo: NewKey("Ä"), Hi: NewKey("日本")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sl, err := textSpace(tc.rows, tc.hist...).Slice(NewKey("Ä"), NewKey("日本"), tc.span)
			require.NoError(t, err)
			require.Equal(t, tc.want, ranges(t, sl))
			back, err := DecodeSlicing(sl.Encode())
			require.NoError(t, err)
			require.Equal(t, tc.want, ranges(t, back), "the split points are stored, not recomputed")
		})
	}
}

func TestTextRangeSemantics(t *testing.T) {
	t.Parallel()
	sp := textSpace(100, "a", "b", "c", "d", "e")
	sl, err := sp.Slice(NewKey("a"), NewKey("e"), 25)
	require.NoError(t, err)
	r, err := sl.Range(1)
	require.NoError(t, err)
	require.Equal(t, "#1 (b,c]", r.String())
	first, err := sl.Range(0)
	require.NoError(t, err)
	require.Equal(t, "#0 [a,b]", first.String())

	_, _, ok, err := sp.Halve(r.Lo, r.Hi)
	require.NoError(t, err)
	require.False(t, ok, "text has no middle key without the database")
	got, err := sp.Sample(r, 3)
	require.NoError(t, err)
	require.Equal(t, []Key{NewKey("c")}, got, "an exclusive lower bound is never sampled")
	got, err = sp.Sample(first, 3)
	require.NoError(t, err)
	require.Equal(t, []Key{NewKey("b"), NewKey("a")}, got)
	ahead, err := sp.Ahead(NewKey("é"), 100)
	require.NoError(t, err)
	require.Equal(t, NewKey("é"), ahead)
	require.Equal(t, "text", sp.Shape())
	require.Equal(t, NewKey(""), sp.Origin())
	require.False(t, Inverted(NewKey("z"), NewKey("a")), "text order is the database's to judge")

	id, ok := sl.Containing(NewKey("c"))
	require.True(t, ok)
	require.Equal(t, int64(1), id)
	require.True(t, sl.Holds(r, NewKey("c")))
	require.False(t, sl.Holds(r, NewKey("b")))

	coarse, err := sl.Reslice(50)
	require.NoError(t, err)
	require.Equal(t, int64(2), coarse.Ranges())
	args, err := sp.Args(NewKey("naïve"), NewKey("Zoë"))
	require.NoError(t, err)
	require.Equal(t, []any{"naïve", "Zoë"}, args)
	_, err = sp.Args(NewKey("a", "b"))
	require.ErrorIs(t, err, ErrBadKey)
}

func FuzzTextKeyRoundTrip(f *testing.F) {
	for _, s := range []string{"", "a", "42", "-7", "007", "Zoë", "日本語", "a\"b\\c", "tab\there", "\u00a0", "null", "[\"x\"]", "😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			t.Skip("PostgreSQL text in a UTF8 database holds only valid UTF-8")
		}
		k := NewKey(s)
		back, err := DecodeKey(k.Encode())
		require.NoError(t, err)
		require.True(t, k.Equal(back), "%q encoded as %s decoded as %q", s, k.Encode(), back.Values())

		sl, err := newPointSlices(NewKey(""), NewKey(s+"z"), 5, 10, []Key{k})
		require.NoError(t, err)
		dec, err := DecodeSlicing(Slicing{impl: sl}.Encode())
		require.NoError(t, err)
		require.Equal(t, ranges(t, Slicing{impl: sl}), ranges(t, dec))
	})
}
