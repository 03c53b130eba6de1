package runner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/metrics"
)

// rowsPerSecond samples the ledger's committed rows over window.
func (b *testBundle) rowsPerSecond(window time.Duration) float64 {
	b.t.Helper()
	before := b.status().RowsDone
	t0 := time.Now()
	time.Sleep(window) // the measurement window itself, not a wait for a condition
	after := b.status().RowsDone
	return float64(after-before) / time.Since(t0).Seconds()
}

// TestFleetRate: three workers share one rate limit — the fleet's committed
// rows per second stay within ±20% of the job's rate, and a live override
// takes effect within 5 s.
func TestFleetRate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(60_000)
	// No rules: other tests' lock waits in this database must not pause it.
	b.start(b.spec("rate: 2000\ntask_span: 5000\nbatch: 100\nread_batch: 1000\nguard: {rules: []}\n"))
	for range 3 {
		b.worker(workerOpts{concurrency: 2})
	}
	ebbtest.Eventually(t, "first rows", func() bool { return b.status().RowsDone > 0 })
	got := b.rowsPerSecond(10 * time.Second)
	t.Logf("fleet rate at rate 2000: %.0f rows/s", got)
	require.InDelta(t, 2000, got, 400, "fleet rate over 10 s")

	_, err := b.ctl.SetOverrides(context.Background(), b.job, "test", control.OverrideFlags{Rate: ptr(500.0)}, false)
	require.NoError(t, err)
	time.Sleep(5 * time.Second) // the override's promised reaction time
	got = b.rowsPerSecond(6 * time.Second)
	t.Logf("fleet rate after set --rate 500: %.0f rows/s", got)
	require.InDelta(t, 500, got, 100, "fleet rate after enqueuer set --rate 500")
	require.NotEqual(t, control.StateDone, b.status().State, "the job must still be running for the measurement to count")
}

// TestMaxWorkersInProcess: with max_workers 1 and three workers of two
// slots each, no two batches are ever in flight: each batch takes a
// transaction-scoped advisory lock, and a batch that finds it taken records
// an overlap. A batch that outlasts the slot's lease keeps its slot, since
// the lease is renewed while the batch runs.
func TestMaxWorkersInProcess(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		rows      int
		span      int
		sleep     string
		slotLease time.Duration
	}{
		{name: "short batches", rows: 6_000, span: 1000, sleep: "0.01"},
		{name: "batches longer than the slot lease", rows: 400, span: 200, sleep: "1", slotLease: 300 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.seed(tc.rows)
			orders := b.db.Table("orders")
			b.db.Exec(t, "ALTER TABLE "+orders+" ADD COLUMN overlap boolean")
			lock := time.Now().UnixNano() % 1_000_000
			// The lock is taken first and held through the sleep until COMMIT, so
			// any two batches whose transactions overlap at all are caught.
			sql := fmt.Sprintf(`WITH l AS (SELECT pg_try_advisory_xact_lock(%d) AS got), s AS (SELECT got, pg_sleep(%s) FROM l) UPDATE %s SET status = 'x', hits = hits + 1, overlap = NOT s.got FROM s WHERE id BETWEEN $1 AND $2 AND status IS NULL`, lock, tc.sleep, orders)
			spec := b.spec(fmt.Sprintf("max_workers: 1\ntask_span: %d\nbatch: 100\nguard: {rules: []}\nsql: %s", tc.span, sql))
			b.start(spec)
			for range 3 {
				b.worker(workerOpts{concurrency: 2, slotLease: tc.slotLease})
			}
			b.waitState(control.StateDone)
			b.assertFilledOnce()
			require.Zero(t, b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE overlap"), "batches overlapped")
			require.Positive(t, b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE overlap = false"))
		})
	}
}

// TestLockWaitsPause: a transaction holds row locks the job needs and more
// sessions queue behind it; the lock-waits rule pauses the job with that
// reason, and once the locks are released the job resumes and completes.
func TestLockWaitsPause(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(20_000)
	orders := b.db.Table("orders")
	ctx := context.Background()

	// Live sessions get their own pool: they would otherwise take every
	// connection of the job's.
	cfg, err := pgxpool.ParseConfig(ebbtest.DatabaseURL())
	require.NoError(t, err)
	cfg.MaxConns = 8
	live, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(live.Close)
	// The holder locks every row the job has left to do.
	holder := lockRows(t, live, orders, "id > 10000")
	// Live users queue behind it.
	var waiters sync.WaitGroup
	for i := range 4 {
		waiters.Add(1)
		go func() {
			defer waiters.Done()
			_, _ = live.Exec(ctx, fmt.Sprintf("UPDATE %s SET legacy_state = legacy_state WHERE id = %d", orders, 15000+i))
		}()
	}
	t.Cleanup(waiters.Wait)

	spec := b.spec(`task_span: 10000
retries: 20
timeouts: {lock: 300ms, statement: 5s}
guard: {check_every: 1s, rules: [{signal: lock_waits, pause_above: 3, clear_below: 3, for: 1s}]}`)
	b.start(spec)
	b.worker(workerOpts{concurrency: 2})

	s := b.waitState(control.StatePaused)
	require.Contains(t, s.PauseReason, "lock_waits")
	require.NotNil(t, s.Guard)
	require.Equal(t, string(guard.StatePause), s.Guard.State)
	// Paused means no batch commits.
	rows := b.settled().RowsDone
	ebbtest.Never(t, 2*time.Second, "rows committed while paused", func() bool { return b.status().RowsDone != rows })

	require.NoError(t, holder.Rollback(ctx))
	waiters.Wait()
	b.waitState(control.StateDone)
	b.assertFilledOnce()
}

// fakeProm speaks enough of Prometheus's HTTP API for a PromQL rule: the
// baseline query (avg_over_time over the window before start) answers
// baseline, every other query answers the current value.
type fakeProm struct {
	baseline float64
	value    atomic.Value // float64
	asked    atomic.Int64
}

func (f *fakeProm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	q := r.Form.Get("query")
	v := f.value.Load().(float64)
	if strings.Contains(q, "avg_over_time") {
		v = f.baseline
	}
	f.asked.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"status": "success",
		"data": map[string]any{
			"resultType": "vector",
			"result": []any{map[string]any{
				"metric": map[string]string{},
				"value":  []any{float64(time.Now().Unix()), fmt.Sprint(v)},
			}},
		},
	})
}

// TestPromQLRule: the baseline is captured before the first batch; a value
// 1.3x the baseline held for `for` pauses the job with the rule's reason; a
// normal value resumes it.
func TestPromQLRule(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(30_000)
	prom := &fakeProm{baseline: 0.2}
	prom.value.Store(0.2)
	srv := httptest.NewServer(prom)
	t.Cleanup(srv.Close)
	b.env["PROMETHEUS_URL"] = srv.URL

	spec := b.spec(`rate: 3000
task_span: 5000
guard: {check_every: 1s, rules: [{name: checkout_p95, prometheus: 'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{route="/checkout"}[1m])))', pause_above: 1.2x, clear_below: 1.1x, for: 2s}]}`)
	b.start(spec)
	bl, err := b.ledger.Baseline(context.Background(), b.job)
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"checkout_p95": 0.2}, bl, "baseline captured by start")

	b.worker(workerOpts{})
	ebbtest.Eventually(t, "job running", func() bool { return b.status().RowsDone > 0 })
	require.Equal(t, string(guard.StateRun), b.status().Guard.State)

	prom.value.Store(0.26) // 1.3x
	s := b.waitState(control.StatePaused)
	require.Contains(t, s.PauseReason, "checkout_p95=0.26 above pause limit 0.24")
	rows := b.settled().RowsDone
	ebbtest.Never(t, 2*time.Second, "rows committed while paused", func() bool { return b.status().RowsDone != rows })

	prom.value.Store(0.2)
	b.waitState(control.StateDone)
	b.assertFilledOnce()
}

// TestStaleDecision: when no leader renews the decision, workers first run
// at the minimum (smallest batch) and then pause; missing eyes are not a
// green light.
func TestStaleDecision(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(20_000)
	ctx := context.Background()
	spec := b.spec("rate: 2000\nbatch: {size: 200, min: 7, max: 200}\nguard: {check_every: 1s, rules: [{signal: lock_waits, pause_above: 1000}]}\n")
	b.start(spec)
	// A leader that publishes one decision and dies: nobody renews it.
	ok, err := b.ledger.AcquireLeader(ctx, b.job, "ghost", time.Hour)
	require.NoError(t, err)
	require.True(t, ok)
	now := time.Now()
	d, err := json.Marshal(guard.Decision{State: guard.StateRun, Factor: 1, GuardFactor: 1, Leader: "ghost", At: now, Expires: now.Add(2 * time.Second)})
	require.NoError(t, err)
	_, err = b.ledger.PutDecision(ctx, b.job, "ghost", d)
	require.NoError(t, err)

	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	b.worker(workerOpts{noGuard: true, metrics: m})

	ebbtest.Eventually(t, "full batches while fresh", func() bool { return testutil.ToFloat64(m.BatchSize.WithLabelValues(b.job)) == 200 })
	ebbtest.Eventually(t, "minimum batches once stale", func() bool {
		return testutil.ToFloat64(m.GuardState.WithLabelValues(b.job)) == metrics.GuardStateStale && testutil.ToFloat64(m.BatchSize.WithLabelValues(b.job)) == 7
	})
	s := b.waitState(control.StatePaused)
	require.Contains(t, s.PauseReason, "no fresh decision")
	require.True(t, s.Guard.Stale)
	rows := b.settled().RowsDone
	ebbtest.Never(t, 2*time.Second, "rows committed without a fresh decision", func() bool { return b.status().RowsDone != rows })
	require.Equal(t, 1.0, testutil.ToFloat64(m.Paused.WithLabelValues(b.job)))

	// A live leader appears: the job resumes and finishes.
	require.NoError(t, b.ledger.ReleaseLeader(ctx, b.job, "ghost"))
	b.worker(workerOpts{})
	b.waitState(control.StateDone)
	b.assertFilledOnce()
}

// TestAdaptiveBatchUnderLock: a competing transaction holds a row lock; the
// batch that runs into it times out, the sizer cuts the size ÷10 at once,
// and after the lock is gone the job completes with every row written once.
func TestAdaptiveBatchUnderLock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(20_000)
	ctx := context.Background()
	holder := lockRows(t, b.db.Pool, b.db.Table("orders"), "id = 3000")

	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	spec := b.spec(`task_span: 20000
read_batch: 2000
batch: {size: 500, min: 10, max: 2000, target: 200ms}
retries: 50
timeouts: {lock: 200ms, statement: 5s}
guard: {rules: []}`)
	b.start(spec)
	b.worker(workerOpts{metrics: m})
	ebbtest.Eventually(t, "batch cut to a tenth after a lock timeout", func() bool {
		return testutil.ToFloat64(m.Batches.WithLabelValues(b.job, "retried")) > 0 &&
			testutil.ToFloat64(m.BatchSize.WithLabelValues(b.job)) <= 50
	})
	require.NoError(t, holder.Rollback(ctx))
	b.waitState(control.StateDone)
	b.assertFilledOnce()
	require.Positive(t, b.status().Retries, "status counts the retried batches")
}

// TestSplitOnRepeatedTimeouts: a range that keeps timing out at one row is
// split in halves that are requeued, so the rest of the range completes;
// only the locked key's range fails, and a start after the lock is gone
// finishes it.
func TestSplitOnRepeatedTimeouts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(2_000)
	ctx := context.Background()
	holder := lockRows(t, b.db.Pool, b.db.Table("orders"), "id = 500")

	spec := b.spec(`task_span: 1000
batch: {size: 100, min: 1, max: 100}
retries: 2
timeouts: {lock: 100ms, statement: 5s}
guard: {rules: []}`)
	b.start(spec)
	b.worker(workerOpts{concurrency: 2})
	s := b.waitState(control.StateFailed)
	require.Equal(t, int64(1), s.RangesFailed, "only the locked key's range fails")
	require.Greater(t, s.RangesTotal, int64(2), "the range was split")
	require.Equal(t, int64(1), b.db.Count(t, "SELECT count(*) FROM "+b.db.Table("orders")+" WHERE status IS NULL"), "every other row is done")
	splits, err := b.ledger.Splits(ctx, b.job)
	require.NoError(t, err)
	require.NotEmpty(t, splits)

	require.NoError(t, holder.Rollback(ctx))
	res := b.start(spec)
	require.Equal(t, 1, res.Requeued)
	b.waitState(control.StateDone)
	b.assertFilledOnce()
}

func ptr[T any](v T) *T { return &v }

// lockRows opens a transaction on pool that holds row locks on table's rows
// matching where, as a live user's long transaction would; roll it back to
// release them (cleanup does, too).
func lockRows(t *testing.T, pool *pgxpool.Pool, table, where string) pgx.Tx {
	t.Helper()
	tx, err := pool.Begin(context.Background())
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	_, err = tx.Exec(context.Background(), "SELECT 1 FROM "+table+" WHERE "+where+" FOR UPDATE")
	require.NoError(t, err)
	return tx
}

// TestProbeErrorIsNotGreen: a rule whose probe fails is shown with its error
// in status, slows the job at once and pauses it after a few checks.
func TestProbeErrorIsNotGreen(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(20_000)
	b.start(b.spec(`rate: 1000
guard: {check_every: 1s, rules: [{name: broken, sql: "SELECT count(*) FROM no_such_table", pause_above: 10}]}`))
	b.worker(workerOpts{})
	ebbtest.Eventually(t, "the error in status, the job slowed", func() bool {
		g := b.status().Guard
		return g != nil && len(g.Signals) == 1 && strings.Contains(g.Signals[0].Err, "no_such_table") && g.State != string(guard.StateRun)
	})
	s := b.waitState(control.StatePaused)
	require.Contains(t, s.PauseReason, "broken: no fresh signal")
}

// TestScheduleWindowPauses: a window with rate 0 pauses the job and names
// the window as the reason.
func TestScheduleWindowPauses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(10_000)
	b.start(b.spec(`guard: {check_every: 1s, rules: []}
schedule: {timezone: UTC, windows: [{days: mon-sun, from: "00:00", to: "24:00", rate: 0}]}`))
	b.worker(workerOpts{})
	s := b.waitState(control.StatePaused)
	require.Contains(t, s.PauseReason, "schedule window mon-sun 00:00-24:00 x0 pauses the job")
	require.Zero(t, s.RowsDone)
}

// TestSizerLearnsAcrossRangesUnderRate: commits run at twice the target, the
// fleet rate caps every batch below the job's size, and each range holds
// only four batches, fewer than one step of the sizer looks at. The worker
// still shrinks its batches: the sizer takes feedback from batches cut at
// the rate's cap, and what it learnt in one range carries into the next.
func TestSizerLearnsAcrossRangesUnderRate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(20_000)
	orders := b.db.Table("orders")
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	// A batch of 500 keys commits in 100 ms, twice the target: 250 is the
	// size that meets it.
	sql := fmt.Sprintf(`WITH s AS (SELECT pg_sleep(($2::bigint - $1::bigint + 1) * 0.0002)) UPDATE %s SET status = 's' || legacy_state, hits = hits + 1 FROM s WHERE id BETWEEN $1 AND $2 AND status IS NULL`, orders)
	b.start(b.spec(`task_span: 2000
read_batch: 2000
rate: 500
batch: {size: 2000, min: 10, max: 2000, target: 50ms}
guard: {rules: []}
sql: ` + sql))
	b.worker(workerOpts{metrics: m})
	ebbtest.Eventually(t, "batches cut below the rate's cap of 500", func() bool {
		size := testutil.ToFloat64(m.BatchSize.WithLabelValues(b.job))
		return size > 0 && size < 500
	})
	// The rest at full speed: the sizer's part is proven.
	zero := 0.0
	_, err = b.ctl.SetOverrides(context.Background(), b.job, "test", control.OverrideFlags{Rate: &zero}, false)
	require.NoError(t, err)
	b.waitState(control.StateDone)
	b.assertFilledOnce()
}
