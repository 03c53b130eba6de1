package control

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/chunks"
	"github.com/ebbhq/ebb/internal/ledger"
)

func TestRangeBounds(t *testing.T) {
	t.Parallel()
	meta := ledger.Meta{From: 1, To: 100, Span: 10, Ranges: 12}
	splits := map[int64][2]int64{3: {31, 35}, 10: {36, 40}}
	tests := []struct {
		name string
		id   int64
		want chunks.Range
	}{
		{"a range of the slicing", 0, chunks.Range{ID: 0, Lo: 1, Hi: 10}},
		{"the last range is cut at to", 9, chunks.Range{ID: 9, Lo: 91, Hi: 100}},
		{"a split range keeps its first half", 3, chunks.Range{ID: 3, Lo: 31, Hi: 35}},
		{"the second half lives past the slicing", 10, chunks.Range{ID: 10, Lo: 36, Hi: 40}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := rangeBounds(meta, splits, tc.id)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	_, err := rangeBounds(meta, splits, 11)
	require.ErrorContains(t, err, "out of bounds", "an ID neither sliced nor split")
}
