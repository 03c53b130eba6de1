package leader_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/keyspace"
	"github.com/ebbhq/ebb/internal/leader"
	"github.com/ebbhq/ebb/internal/ledger"
)

// TestLeaderRateWithSchedule drives a leader on a fake clock against a
// simulated fleet that writes what the followers allow (1000 rows/s when
// unlimited) and records the fleet rate each check allows.
//
// For a job without a rate the base must be the speed the fleet reached
// unthrottled: refreshing it from rows/s already cut by a window decayed the
// rate every check. And a window above x1 must not hide a slow-down.
func TestLeaderRateWithSchedule(t *testing.T) {
	t.Parallel()
	// capacity is the rows/s the fleet writes when nothing holds it back.
	const capacity = 1000.0
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) // a Monday
	tests := []struct {
		name   string
		rate   float64
		window float64
		slowAt int // first check whose sample is over the slow limit; -1 never
		want   []float64
	}{
		// Check 0 has no observed rate yet, so the window cannot cut it.
		{"unlimited, x0.25 window holds a quarter", 0, 0.25, -1, []float64{0, 250, 250, 250, 250, 250}},
		{"unlimited, x2 window, the first slow-down halves", 0, 2, 2, []float64{0, 0, 500, 250, 125}},
		{"unlimited, x0.25 window and a slow-down", 0, 0.25, 2, []float64{0, 250, 125, 62.5, 31.25}},
		{"rated, x2 window doubles", 1000, 2, -1, []float64{2000, 2000, 2000}},
		{"rated, x2 window, slow-down", 1000, 2, 1, []float64{2000, 1000, 500}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := ebbtest.Schema(t)
			ctx := context.Background()
			knob := knobTable(t, db, 1)
			l, _, spec := storeJob(t, fmt.Sprintf(`name: rate-window
table: t
key: id
pending: p
set: s
rate: %g
guard: {check_every: 1s, rules: [{name: load, sql: "SELECT v FROM %s", slow_above: 5, clear_below: 5}]}
schedule: {timezone: UTC, windows: [{days: mon, from: "00:00", to: "24:00", rate: %g}]}
`, tc.rate, knob, tc.window))
			clock := t0
			g, err := leader.New(leader.Config{
				Ledger: l, ID: "me", Logger: ebbtest.Logger(t),
				Pools: func(context.Context, string) (*pgxpool.Pool, error) { return db.Pool, nil },
				Now:   func(context.Context) (time.Time, error) { return clock, nil },
			})
			require.NoError(t, err)
			every := spec.Guard.CheckEvery.D()

			var got []float64
			for i := range tc.want {
				if i == tc.slowAt {
					db.Exec(t, "UPDATE "+knob+" SET v = 10")
				}
				g.CheckAll(ctx)
				raw, err := l.Decision(ctx, spec.Name)
				require.NoError(t, err)
				require.NotNil(t, raw, "check %d published no decision", i)
				lim := guard.NewFollower().Limits(spec, ledger.Controls{Decision: raw}, clock)
				require.False(t, lim.Paused, "check %d: %s", i, lim.Reason)
				require.False(t, lim.Stale, "check %d", i)
				got = append(got, lim.Rate)

				// The fleet writes what the limits allow until the next check.
				rowsPerSec := capacity
				if lim.Rate > 0 {
					rowsPerSec = min(lim.Rate, capacity)
				}
				rows := int64(rowsPerSec * every.Seconds())
				require.NoError(t, l.Commit(ctx, spec.Name, 0, 0, keyspace.Int(int64(i+1)), rows, 10*time.Millisecond, time.Minute))
				clock = clock.Add(every)
			}
			require.InDeltaSlice(t, tc.want, got, 1e-9, "fleet rate allowed after each check")
		})
	}
}
