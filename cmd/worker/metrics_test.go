package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/dial"
	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/metrics"
)

// TestMetrics: a worker on a small job exports, while it runs and after it
// finished, the rows and batches it wrote, the job's ranges, progress and
// ETA, the guard's signal with its limits, and asynq's queue metrics.
func TestMetrics(t *testing.T) {
	t.Parallel()
	// rate keeps the job running for six seconds, so the first scrapes see
	// it half done. The one rule is far from firing: the test watches the
	// thresholds, not the guard (other tests share the database).
	b := setup(t, 6_000, `task_span: 2000
batch: 100
sleep: 10ms
rate: 1000
guard: {check_every: 1s, rules: [{signal: lock_waits, slow_above: 1000, pause_above: 2000, clear_below: 500, for: 1m}]}
`)
	total := b.status(t).RangesTotal
	require.EqualValues(t, 3, total)
	job := map[string]string{"backfill": b.job}
	with := func(k, v string) map[string]string { return map[string]string{"backfill": b.job, k: v} }
	w := b.worker(t)
	addr := metricsAddr(t, w)

	// While it runs.
	var mfs map[string]*dto.MetricFamily
	ebbtest.Eventually(t, "rows and committed batches counted", func() bool {
		mfs = scrape(t, addr)
		rows, _ := sample(mfs, "ebb_rows_total", job)
		committed, _ := sample(mfs, "ebb_batches_total", with("outcome", "committed"))
		return rows > 0 && committed > 0
	})
	pending, ok := sample(mfs, "ebb_ranges", with("state", "pending"))
	require.True(t, ok, "ebb_ranges{state=pending}")
	require.Positive(t, pending, "the job cannot be done after its first batches")
	progress, ok := sample(mfs, "ebb_progress_ratio", job)
	require.True(t, ok, "ebb_progress_ratio")
	require.Less(t, progress, 1.0)
	pause, ok := sample(mfs, "ebb_guard_threshold", map[string]string{"backfill": b.job, "signal": "lock_waits", "kind": "pause"})
	require.True(t, ok, "ebb_guard_threshold of the leader")
	require.Equal(t, 2000.0, pause)
	_, ok = sample(mfs, "ebb_guard_signal", map[string]string{"backfill": b.job, "signal": "lock_waits"})
	require.True(t, ok, "ebb_guard_signal of the leader")

	// asynq's collector reads every queue on the shared Redis and drops a
	// scrape in which another test's queue vanished: poll.
	queue := map[string]string{"queue": b.redis.Queue}
	ebbtest.Eventually(t, "asynq metrics of the test's queue", func() bool {
		mfs := scrape(t, addr)
		_, size := sample(mfs, "asynq_queue_size", queue)
		_, enqueued := sample(mfs, "asynq_tasks_enqueued_total", queue)
		return size || enqueued
	})

	// After it finished.
	ebbtest.Eventually(t, "job done", func() bool { return b.status(t).State == control.StateDone })
	ebbtest.Eventually(t, "every range counted done", func() bool {
		mfs = scrape(t, addr)
		done, _ := sample(mfs, "ebb_ranges", with("state", "done"))
		return done == float64(total)
	})
	for state, want := range map[string]float64{"failed": 0, "pending": 0} {
		got, ok := sample(mfs, "ebb_ranges", with("state", state))
		require.True(t, ok, state)
		require.Equal(t, want, got, state)
	}
	for name, want := range map[string]float64{"ebb_progress_ratio": 1, "ebb_eta_seconds": 0, "ebb_rows_total": 6_000} {
		got, ok := sample(mfs, name, job)
		require.True(t, ok, name)
		require.Equal(t, want, got, name)
	}
	b.assertExactlyOnce(t)
}

// scrape reads the worker's /metrics.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, "http://"+addr+"/metrics")
	require.Equal(t, http.StatusOK, code, body)
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	return mfs
}

// sample finds the value of the series of name whose labels include want.
func sample(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
	return ebbtest.Sample(mf, want)
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// TestReadyz: /readyz answers 503 with the reason while Redis or the
// worker's database does not answer, even before any task opened a pool,
// and never shows a password. Not parallel: it sets the DSN variable.
func TestReadyz(t *testing.T) {
	live := ebbtest.Redis(t).Client
	dead := redis.NewClient(&redis.Options{Addr: closedAddr(t), MaxRetries: -1})
	t.Cleanup(func() { _ = dead.Close() })
	const env = "EBB_TEST_READYZ_DSN"
	tests := []struct {
		name  string
		redis *redis.Client
		dsn   string
		code  int
		want  string
	}{
		{"redis unreachable", dead, ebbtest.DatabaseURL(), http.StatusServiceUnavailable, "redis unreachable"},
		{"postgres unreachable", live, "postgres://u:s3cret@" + closedAddr(t) + "/db", http.StatusServiceUnavailable, "cannot reach PostgreSQL"},
		{"both answer", live, ebbtest.DatabaseURL(), http.StatusOK, "ready"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(env, tc.dsn)
			pools := &dial.Pools{}
			t.Cleanup(pools.Close)
			srv := httptest.NewServer(mux(prometheus.NewRegistry(), readiness{ping: tc.redis.Ping, pools: pools, envs: []string{env}}))
			t.Cleanup(srv.Close)
			code, body := get(t, srv.URL+"/readyz")
			require.Equal(t, tc.code, code, body)
			require.Contains(t, body, tc.want)
			require.NotContains(t, body, "s3cret")
			// Liveness does not depend on the servers.
			code, _ = get(t, srv.URL+"/healthz")
			require.Equal(t, http.StatusOK, code)
		})
	}
	// A pool opened earlier is checked too: stop answering by closing it.
	t.Run("open pool closed", func(t *testing.T) {
		t.Setenv(env, ebbtest.DatabaseURL())
		pools := &dial.Pools{}
		t.Cleanup(pools.Close)
		_, err := pools.Get(context.Background(), env)
		require.NoError(t, err)
		pools.Each(func(_ string, p *pgxpool.Pool) { p.Close() })
		srv := httptest.NewServer(mux(prometheus.NewRegistry(), readiness{ping: live.Ping, pools: pools}))
		t.Cleanup(srv.Close)
		code, body := get(t, srv.URL+"/readyz")
		require.Equal(t, http.StatusServiceUnavailable, code, body)
		require.Contains(t, body, "postgres unreachable ("+env+")")
	})
}

// TestJobProgressMatchesStatus: the gauges a scrape exports, read from one
// ledger snapshot, are the numbers enqueuer status prints; an unknown job is
// an error, which leaves it out of the scrape.
func TestJobProgressMatchesStatus(t *testing.T) {
	t.Parallel()
	b := setup(t, 3_000, "task_span: 1000\n")
	feed := jobProgress(ledger.New(b.redis.Client, b.redis.Prefix), time.Now)
	got, err := feed(context.Background(), b.job)
	require.NoError(t, err)
	s := b.status(t)
	require.Equal(t, metrics.JobProgress{
		RangesTotal: s.RangesTotal, RangesDone: s.RangesDone, RangesFailed: s.RangesFailed,
		Progress: s.Progress, ETASeconds: s.ETASeconds,
	}, got)
	_, err = feed(context.Background(), "no-such-job")
	require.ErrorIs(t, err, ledger.ErrNotFound)
}

// TestMetricsLoopbackByDefault: without -metrics-addr the worker serves
// /metrics, /healthz and /readyz on loopback only; a deployment that wants
// them on the network says :9090, as deploy/ does.
func TestMetricsLoopbackByDefault(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(workerBinary(t), "-h").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), `(default "127.0.0.1:9090")`)
}
