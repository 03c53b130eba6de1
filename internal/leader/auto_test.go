package leader_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/keyspace"
	"github.com/ebbhq/ebb/internal/leader"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/metrics"
)

// TestLeaderAutoRate drives rate: auto through a leader on a fake clock,
// against a simulated fleet that writes what the followers allow: the rate
// starts at rate_start, doubles while the objective (a sql rule's number)
// holds, is cut (here to half: the objective is far over) from what the
// fleet ran when it is crossed, then grows by 5 % of that ceiling a check. Every cut is in the history with
// the rates and the reason, and the rate is exported.
func TestLeaderAutoRate(t *testing.T) {
	t.Parallel()
	db := ebbtest.Schema(t)
	ctx := context.Background()
	knob := knobTable(t, db, 1)
	l, _, spec := storeJob(t, fmt.Sprintf(`name: auto
table: t
key: id
pending: p
set: s
rate: auto
rate_start: 1000
objective: {signal: load, max: 5, settle: 1s}
guard:
  check_every: 1s
  rules:
    - {name: load, sql: "SELECT v FROM %s", pause_above: 100}
    - {signal: lock_waits, pause_above: 1000}
`, knob))
	require.True(t, spec.AutoRate)
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	clock := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	g, err := leader.New(leader.Config{
		Ledger: l, ID: "me", Logger: ebbtest.Logger(t), Metrics: m,
		Pools: func(context.Context, string) (*pgxpool.Pool, error) { return db.Pool, nil },
		Now:   func(context.Context) (time.Time, error) { return clock, nil },
	})
	require.NoError(t, err)

	want := []float64{1000, 2000, 4000, 8000, 4000, 4400}
	var got []float64
	for i := range want {
		switch i {
		case 4:
			db.Exec(t, "UPDATE "+knob+" SET v = 9")
		case 5:
			db.Exec(t, "UPDATE "+knob+" SET v = 1")
		}
		g.CheckAll(ctx)
		raw, err := l.Decision(ctx, spec.Name)
		require.NoError(t, err)
		lim := guard.NewFollower().Limits(spec, ledger.Controls{Decision: raw}, clock)
		require.False(t, lim.Paused, "check %d: %s", i, lim.Reason)
		got = append(got, lim.Rate)
		require.Equal(t, lim.Rate, testutil.ToFloat64(m.AutoRate.WithLabelValues(spec.Name)), "check %d: the rate is exported", i)

		rows := int64(lim.Rate) // the fleet keeps up, for one second
		require.NoError(t, l.Commit(ctx, spec.Name, 0, 0, keyspace.Int(int64(i+1)), rows, 10*time.Millisecond, time.Minute))
		clock = clock.Add(time.Second)
	}
	require.InDeltaSlice(t, want, got, 1e-9, "fleet rate after each check")

	// An operator's rate wins over the controller's.
	raw, err := l.Decision(ctx, spec.Name)
	require.NoError(t, err)
	over := 300.0
	lim := guard.NewFollower().Limits(spec, ledger.Controls{Decision: raw, Overrides: ledger.Overrides{Rate: &over}}, clock)
	require.Equal(t, 300.0, lim.Rate)

	// "Why was it slow at 03:00:04?" The history has the cut.
	entries, err := l.History(ctx, spec.Name, 100)
	require.NoError(t, err)
	var cut *guard.Change
	for _, e := range entries {
		var c guard.Change
		require.NoError(t, json.Unmarshal(e, &c))
		if c.Rate < c.FromRate {
			cut = &c
		}
	}
	require.NotNil(t, cut, "the cut is recorded: %s", entries)
	require.Equal(t, 8000.0, cut.FromRate)
	require.Equal(t, 4000.0, cut.Rate, "9 is far above 5: cut to half")
	require.Contains(t, cut.RateWhy, "objective 9 above its max 5")
	require.Equal(t, 9.0, cut.Signals["objective"])
}
