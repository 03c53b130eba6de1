package control

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/keyspace"
	"github.com/ebbhq/ebb/internal/ledger"
)

func TestRangeBounds(t *testing.T) {
	t.Parallel()
	space, err := keyspace.New("id")
	require.NoError(t, err)
	sl, err := space.Slice(keyspace.Int(1), keyspace.Int(100), 10)
	require.NoError(t, err)
	meta := ledger.Meta{Slicing: sl, Ranges: 12}
	splits := map[int64]keyspace.Range{3: ir(3, 31, 35), 10: ir(10, 36, 40)}
	tests := []struct {
		name string
		id   int64
		want keyspace.Range
	}{
		{"a range of the slicing", 0, ir(0, 1, 10)},
		{"the last range is cut at to", 9, ir(9, 91, 100)},
		{"a split range keeps its first half", 3, ir(3, 31, 35)},
		{"the second half lives past the slicing", 10, ir(10, 36, 40)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := rangeBounds(meta, splits, tc.id)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	_, err = rangeBounds(meta, splits, 11)
	require.ErrorContains(t, err, "out of bounds", "an ID neither sliced nor split")
}

// ir is a range of integer keys.
func ir(id, lo, hi int64) keyspace.Range {
	return keyspace.Range{ID: id, Lo: keyspace.Int(lo), Hi: keyspace.Int(hi)}
}
