package guard_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/metrics"
)

// TestLeaderHandsOver: a leader publishes decisions with its signals in
// /metrics; when another worker holds the lease it stops publishing and
// stops exporting the job's signals, so dashboards never show a frozen line.
func TestLeaderHandsOver(t *testing.T) {
	t.Parallel()
	db := ebbtest.Schema(t)
	rd := ebbtest.Redis(t)
	l := ledger.New(rd.Client, rd.Prefix)
	ctx := context.Background()
	spec, err := jobspec.Parse([]byte(`name: hand-over
table: t
key: id
pending: p
set: s
guard: {check_every: 1s, rules: [{name: one, sql: "SELECT 1", pause_above: 5}]}
`))
	require.NoError(t, err)
	b, err := spec.JSON()
	require.NoError(t, err)
	_, err = l.SaveJob(ctx, spec.Name, b, ledger.Meta{Queue: rd.Queue, From: 1, To: 10, Span: 10, Ranges: 1, Created: time.Now()})
	require.NoError(t, err)

	m, err := metrics.New(prometheus.NewRegistry())
	require.NoError(t, err)
	g, err := guard.NewLeader(guard.LeaderConfig{
		Ledger: l, ID: "me", Metrics: m, Tick: 100 * time.Millisecond, Logger: ebbtest.Logger(t),
		Pools: func(context.Context, string) (*pgxpool.Pool, error) { return db.Pool, nil },
	})
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })

	ebbtest.Eventually(t, "a decision and the signal in /metrics", func() bool {
		raw, err := l.Decision(ctx, spec.Name)
		require.NoError(t, err)
		return raw != nil && testutil.CollectAndCount(m.GuardSignal) == 1
	})
	d, err := l.Decision(ctx, spec.Name)
	require.NoError(t, err)
	dec, err := guard.ParseDecision(d)
	require.NoError(t, err)
	require.Equal(t, guard.StateRun, dec.State)
	require.Equal(t, "me", dec.Leader)
	require.Equal(t, 1.0, testutil.ToFloat64(m.GuardSignal.WithLabelValues(spec.Name, "one")))

	// Another worker takes over (the lease is handed to it by hand here).
	require.NoError(t, rd.Client.Set(ctx, l.LeaderKey(spec.Name), "other", time.Minute).Err())
	ebbtest.Eventually(t, "the former leader stops exporting the job's signals", func() bool {
		return testutil.CollectAndCount(m.GuardSignal) == 0 && testutil.CollectAndCount(m.GuardThreshold) == 0
	})
	who, err := l.Leader(ctx, spec.Name)
	require.NoError(t, err)
	require.Equal(t, "other", who, "a live lease is never stolen")
}
