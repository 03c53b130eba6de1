package progress_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/progress"
)

func TestOf(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	snap := func(total, done, rows, estimate int64, failed int) ledger.Snapshot {
		s := ledger.Snapshot{Meta: ledger.Meta{Ranges: total, Estimate: estimate, Created: created}, RangesDone: done, Rows: rows}
		for i := range failed {
			s.Failed = append(s.Failed, ledger.Failure{Range: int64(i), Reason: "boom"})
		}
		return s
	}
	finished := func(s ledger.Snapshot, after time.Duration) ledger.Snapshot {
		s.Meta.Finished = created.Add(after)
		return s
	}
	tests := []struct {
		name  string
		snap  ledger.Snapshot
		after time.Duration // now - created
		want  progress.Figures
	}{
		{
			name: "fresh, no estimate", snap: snap(10, 0, 0, 0, 0), after: 10 * time.Second,
			want: progress.Figures{RangesTotal: 10, Basis: progress.BasisRanges, Elapsed: 10 * time.Second, ETASeconds: -1},
		},
		{
			name: "rows against the estimate", snap: snap(10, 2, 250, 1000, 0), after: 10 * time.Second,
			want: progress.Figures{RangesTotal: 10, RangesDone: 2, RowsDone: 250, EstimatedRows: 1000, Progress: 0.25,
				Basis: progress.BasisRows, Elapsed: 10 * time.Second, AvgRowsPerSec: 25, ETASeconds: 30},
		},
		{
			name: "estimate overtaken: ranges basis", snap: snap(4, 1, 150, 100, 0), after: 10 * time.Second,
			want: progress.Figures{RangesTotal: 4, RangesDone: 1, RowsDone: 150, EstimatedRows: 100, Progress: 0.25,
				Basis: progress.BasisRanges, Elapsed: 10 * time.Second, AvgRowsPerSec: 15, ETASeconds: 30},
		},
		{
			name: "failed ranges counted apart", snap: snap(4, 1, 10, 0, 2), after: 10 * time.Second,
			want: progress.Figures{RangesTotal: 4, RangesDone: 1, RangesFailed: 2, RowsDone: 10, Progress: 0.25,
				Basis: progress.BasisRanges, Elapsed: 10 * time.Second, AvgRowsPerSec: 1, ETASeconds: 30},
		},
		{
			name: "done: the rate stops at Finished", snap: finished(snap(4, 4, 400, 1000, 0), 20*time.Second), after: time.Hour,
			want: progress.Figures{RangesTotal: 4, RangesDone: 4, RowsDone: 400, EstimatedRows: 1000, Progress: 1,
				Basis: progress.BasisRows, Elapsed: 20 * time.Second, AvgRowsPerSec: 20, ETASeconds: 0, Finished: created.Add(20 * time.Second)},
		},
		{
			name: "done without a recorded finish", snap: snap(2, 2, 100, 0, 0), after: 100 * time.Second,
			want: progress.Figures{RangesTotal: 2, RangesDone: 2, RowsDone: 100, Progress: 1,
				Basis: progress.BasisRanges, Elapsed: 100 * time.Second, AvgRowsPerSec: 1, ETASeconds: 0},
		},
		{
			name: "a finish recorded while ranges remain is ignored", snap: finished(snap(4, 2, 20, 0, 0), time.Second), after: 10 * time.Second,
			want: progress.Figures{RangesTotal: 4, RangesDone: 2, RowsDone: 20, Progress: 0.5,
				Basis: progress.BasisRanges, Elapsed: 10 * time.Second, AvgRowsPerSec: 2, ETASeconds: 10},
		},
		{
			name: "clock behind the start: no rate, no ETA", snap: snap(4, 1, 10, 0, 0), after: -time.Second,
			want: progress.Figures{RangesTotal: 4, RangesDone: 1, RowsDone: 10, Progress: 0.25,
				Basis: progress.BasisRanges, Elapsed: -time.Second, ETASeconds: -1},
		},
		{
			name: "no ranges at all", snap: snap(0, 0, 0, 0, 0), after: time.Second,
			want: progress.Figures{Basis: progress.BasisRanges, Elapsed: time.Second, ETASeconds: -1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := progress.Of(tc.snap, created.Add(tc.after))
			tc.want.Active = max(tc.want.Elapsed, 0) // Of counts no time paused
			require.Equal(t, tc.want, got)
		})
	}
}

// TestOfActive: time spent paused counts in Elapsed, not in the rate or
// the time left.
func TestOfActive(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	s := ledger.Snapshot{Meta: ledger.Meta{Ranges: 4, Created: created, Estimate: 1000}, RangesDone: 1, Rows: 250}
	got := progress.OfActive(s, created.Add(time.Hour+25*time.Second), time.Hour)
	require.Equal(t, time.Hour+25*time.Second, got.Elapsed)
	require.Equal(t, 25*time.Second, got.Active)
	require.InDelta(t, 10, got.AvgRowsPerSec, 1e-9)
	require.InDelta(t, 75, got.ETASeconds, 1e-9, "750 rows left at 10 rows/s, the paused hour left out")
}
