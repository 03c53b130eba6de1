package leader_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
	"github.com/ebbhq/ebb/internal/leader"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/metrics"
)

// TestLeaderHandsOver: a leader publishes decisions with its signals in
// /metrics; when another worker holds the lease it stops publishing and
// stops exporting the job's signals, so dashboards never show a frozen line.
func TestLeaderHandsOver(t *testing.T) {
	t.Parallel()
	db := ebbtest.Schema(t)
	m, err := metrics.New(prometheus.NewRegistry())
	require.NoError(t, err)
	l, rd, spec := runLeader(t, db, m, `name: hand-over
table: t
key: id
pending: p
set: s
guard: {check_every: 1s, rules: [{name: one, sql: "SELECT 1", pause_above: 5}]}
`)
	ctx := context.Background()

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
	require.Equal(t, "other", leaseHolder(t, rd, l, spec.Name), "a live lease is never stolen")
}

// TestLeaderSlowHalvesAndRestores: while a slow rule holds, each check
// halves the rate factor; after it clears the factor climbs back ×1.5 a
// check to 1, and the decision says it is restoring.
func TestLeaderSlowHalvesAndRestores(t *testing.T) {
	t.Parallel()
	db := ebbtest.Schema(t)
	ctx := context.Background()
	knob := knobTable(t, db, 10)
	l, _, spec := runLeader(t, db, nil, `name: slow-down
table: t
key: id
pending: p
set: s
rate: 1000
guard: {check_every: 1s, rules: [{name: load, sql: "SELECT v FROM `+knob+`", slow_above: 5, clear_below: 5}]}
`)

	decision := func() *guard.Decision {
		raw, err := l.Decision(ctx, spec.Name)
		require.NoError(t, err)
		if raw == nil {
			return nil
		}
		d, err := guard.ParseDecision(raw)
		require.NoError(t, err)
		return d
	}
	// Record the factors of successive decisions.
	var seen []float64
	var last time.Time
	record := func() {
		if d := decision(); d != nil && d.At.After(last) {
			last = d.At
			seen = append(seen, d.GuardFactor)
		}
	}
	ebbtest.Eventually(t, "three checks slowed", func() bool {
		record()
		return len(seen) >= 3
	})
	require.Equal(t, []float64{0.5, 0.25, 0.125}, seen[:3], "halved every check while the rule holds")
	d := decision()
	require.Equal(t, guard.StateSlow, d.State)
	require.Contains(t, d.Reasons[0], "load=10 above slow limit 5")

	db.Exec(t, "UPDATE "+knob+" SET v = 1")
	ebbtest.Eventually(t, "back to the full rate", func() bool {
		record()
		return seen[len(seen)-1] == 1
	})
	// Gradually: ×1.5 a check, never a jump straight back to 1.
	restored := seen[lastIndex(seen, 0.125)+1:]
	require.Greater(t, len(restored), 3, "factors after the clear: %v", seen)
	for i := 1; i < len(restored); i++ {
		require.LessOrEqual(t, restored[i], restored[i-1]*1.5+1e-9, "%v", seen)
	}

	// Every change is in the job's history, oldest last, with what the
	// guard saw: "why was it slow at 03:12?" has an answer afterwards.
	// The leader records a change just after it publishes the decision,
	// so the last entry may land a moment after the decision was seen.
	var raw [][]byte
	ebbtest.Eventually(t, "the restore to the full rate in the history", func() bool {
		var err error
		raw, err = l.History(ctx, spec.Name, 0)
		require.NoError(t, err)
		var newest guard.Change
		return len(raw) > 0 && json.Unmarshal(raw[0], &newest) == nil && newest.Factor == 1
	})
	changes := make([]guard.Change, len(raw))
	for i, b := range raw {
		require.NoError(t, json.Unmarshal(b, &changes[len(raw)-1-i]))
	}
	first := changes[0]
	require.Equal(t, guard.StateRun, first.From)
	require.Equal(t, guard.StateSlow, first.State)
	require.Equal(t, 1.0, first.FromFactor)
	require.Equal(t, 0.5, first.Factor)
	require.Equal(t, 10.0, first.Signals["load"])
	require.Contains(t, first.Reasons[0], "load=10 above slow limit 5")
	for i := 1; i < len(changes); i++ {
		require.Equal(t, changes[i-1].Factor, changes[i].FromFactor, "each entry starts where the last ended")
		require.True(t, changes[i].From != changes[i].State || changes[i].FromFactor != changes[i].Factor, "only changes are kept: %+v", changes[i])
	}
	require.Equal(t, 1.0, changes[len(changes)-1].Factor)

	// The job's series charts it: points with the fleet's rate and every
	// signal, one on each change of state and otherwise one per
	// SeriesEvery at most, though the guard checked every second.
	pts, err := l.Series(ctx, spec.Name, 0)
	require.NoError(t, err)
	var states []guard.State
	for i := len(pts) - 1; i >= 0; i-- {
		var p guard.Point
		require.NoError(t, json.Unmarshal(pts[i], &p))
		states = append(states, p.State)
		require.Contains(t, p.Signals, "load")
	}
	require.Equal(t, guard.StateSlow, states[0], "the first check")
	require.Contains(t, states, guard.StateRun, "the clear, charted where it happened")
	require.Less(t, len(pts), len(seen), "thinned: fewer points than checks")
}

// TestLeaderThatCannotWatchStepsAside: a worker that holds the lease but
// cannot run the job's guard (here: no PROMETHEUS_URL in its environment)
// publishes a pause naming the cause, keeps the previous rule memory, and
// gives the lease up, so a healthy worker takes over and runs the job.
func TestLeaderThatCannotWatchStepsAside(t *testing.T) {
	t.Parallel()
	db := ebbtest.Schema(t)
	ctx := context.Background()
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"1"]}]}}`)
	}))
	t.Cleanup(prom.Close)
	l, rd, spec := storeJob(t, `name: blind-leader
table: t
key: id
pending: p
set: s
guard: {check_every: 1s, rules: [{name: p95, prometheus: "checkout_p95", pause_above: 5}]}
`)
	// A previous leader's decision, with rule memory to carry over.
	prev := guard.Decision{State: guard.StateSlow, Factor: 0.25, GuardFactor: 0.25, Base: 123, Leader: "old",
		Rules: map[string]*guard.RuleState{"p95": {Hold: 42 * time.Second}}}
	raw, err := json.Marshal(prev)
	require.NoError(t, err)
	ok, err := l.AcquireLeader(ctx, spec.Name, "old", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	put, err := l.PutDecision(ctx, spec.Name, "old", raw)
	require.NoError(t, err)
	require.True(t, put)
	require.NoError(t, l.ReleaseLeader(ctx, spec.Name, "old"))

	decision := func() *guard.Decision {
		raw, err := l.Decision(ctx, spec.Name)
		require.NoError(t, err)
		d, err := guard.ParseDecision(raw)
		require.NoError(t, err)
		return d
	}
	cfg := func(id string, getenv func(string) string) leader.Config {
		return leader.Config{
			Ledger: l, ID: id, Tick: 100 * time.Millisecond, Logger: ebbtest.Logger(t), Getenv: getenv,
			HTTPClient: prom.Client(),
			Pools:      func(context.Context, string) (*pgxpool.Pool, error) { return db.Pool, nil },
		}
	}

	// Only a worker that cannot watch: the job is paused, and says why.
	startLeader(t, cfg("blind", func(string) string { return "" }))
	ebbtest.Eventually(t, "a pause from the blind worker", func() bool {
		d := decision()
		return d.Leader == "blind" && d.State == guard.StatePause
	})
	d := decision()
	require.Contains(t, d.Reasons[0], "cannot watch the job on worker blind")
	require.Contains(t, d.Reasons[0], "PROMETHEUS_URL is not set")
	require.Equal(t, 0.25, d.GuardFactor, "rule memory carried over for the next leader")
	require.Equal(t, 123.0, d.Base)
	require.Equal(t, 42*time.Second, d.Rules["p95"].Hold)
	now, err := l.Now(ctx)
	require.NoError(t, err)
	c, err := l.Controls(ctx, spec.Name, rd.Queue)
	require.NoError(t, err)
	lim := guard.NewFollower().Limits(spec, c, now)
	require.True(t, lim.Paused)
	require.Contains(t, lim.Reason, "PROMETHEUS_URL is not set", "workers and status see the cause, not \"no fresh decision\"")

	// A healthy worker joins: it takes the lease and runs the job.
	startLeader(t, cfg("sighted", func(k string) string {
		if k == "PROMETHEUS_URL" {
			return prom.URL
		}
		return ""
	}))
	ebbtest.Eventually(t, "the healthy worker leads and publishes run", func() bool {
		d := decision()
		return d.Leader == "sighted" && d.State == guard.StateRun
	})
	ebbtest.Never(t, 2*time.Second, "the blind worker leads again", func() bool {
		return leaseHolder(t, rd, l, spec.Name) != "sighted" || decision().Leader != "sighted"
	})
}

// leaseHolder is the worker holding job's guard lease, or "" when none.
func leaseHolder(t *testing.T, rd *ebbtest.RedisEnv, l *ledger.Ledger, job string) string {
	t.Helper()
	who, err := rd.Client.Get(context.Background(), l.LeaderKey(job)).Result()
	if errors.Is(err, redis.Nil) {
		return ""
	}
	require.NoError(t, err)
	return who
}

func lastIndex(s []float64, v float64) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == v {
			return i
		}
	}
	return -1
}

// runLeader stores the job in jobYAML on a fresh prefix and runs one guard
// leader ("me", checking every 100 ms) on it until the test ends.
func runLeader(t *testing.T, db *ebbtest.DB, m *metrics.Metrics, jobYAML string) (*ledger.Ledger, *ebbtest.RedisEnv, *jobspec.Spec) {
	t.Helper()
	l, rd, spec := storeJob(t, jobYAML)
	startLeader(t, leader.Config{
		Ledger: l, ID: "me", Metrics: m, Tick: 100 * time.Millisecond, Logger: ebbtest.Logger(t),
		Pools: func(context.Context, string) (*pgxpool.Pool, error) { return db.Pool, nil },
	})
	return l, rd, spec
}

// startLeader runs a guard leader with cfg until the test ends.
func startLeader(t *testing.T, cfg leader.Config) {
	t.Helper()
	g, err := leader.New(cfg)
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// storeJob stores the job in jobYAML on a fresh prefix.
func storeJob(t *testing.T, jobYAML string) (*ledger.Ledger, *ebbtest.RedisEnv, *jobspec.Spec) {
	t.Helper()
	rd := ebbtest.Redis(t)
	l := ledger.New(rd.Client, rd.Prefix)
	spec, err := jobspec.Parse([]byte(jobYAML))
	require.NoError(t, err)
	b, err := spec.JSON()
	require.NoError(t, err)
	space, err := keyspace.New(spec.Key...)
	require.NoError(t, err)
	sl, err := space.Slice(keyspace.Int(1), keyspace.Int(10), 10)
	require.NoError(t, err)
	_, err = l.SaveJob(context.Background(), spec.Name, b, ledger.Meta{Queue: rd.Queue, Slicing: sl, Ranges: 1, Created: time.Now()})
	require.NoError(t, err)
	return l, rd, spec
}
