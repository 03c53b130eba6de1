package runner_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
	"github.com/ebbhq/ebb/internal/leader"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/metrics"
	"github.com/ebbhq/ebb/internal/rangetask"
	"github.com/ebbhq/ebb/internal/runner"
)

type testBundle struct {
	t      testing.TB
	db     *ebbtest.DB
	redis  *ebbtest.RedisEnv
	ctl    *control.Control
	ledger *ledger.Ledger
	job    string
	// env is what the guard reads with Getenv (e.g. PROMETHEUS_URL).
	env map[string]string
}

func (b *testBundle) getenv(k string) string { return b.env[k] }

func setup(t testing.TB) *testBundle {
	t.Helper()
	db := ebbtest.Schema(t)
	r := ebbtest.Redis(t)
	ctl := control.New(r.Client, r.Prefix, ebbtest.Logger(t))
	t.Cleanup(func() { _ = ctl.Close() })
	b := &testBundle{t: t, db: db, redis: r, ctl: ctl, ledger: ctl.Ledger(), job: "job-" + ebbtest.Suffix(), env: map[string]string{}}
	ctl.SetGetenv(b.getenv)
	return b
}

// seed creates orders with ids 1..n, all pending.
func (b *testBundle) seed(n int) {
	b.db.Exec(b.t, fmt.Sprintf(`CREATE TABLE %s (id bigint PRIMARY KEY, legacy_state int NOT NULL,
		status text, hits int NOT NULL DEFAULT 0)`, b.db.Table("orders")))
	b.db.Exec(b.t, fmt.Sprintf(`INSERT INTO %s (id, legacy_state) SELECT g, g %% 7 FROM generate_series(1, %d) g`, b.db.Table("orders"), n))
	b.db.Exec(b.t, "ANALYZE "+b.db.Table("orders"))
}

// spec parses a job file for the test's table; extra lines (YAML) replace
// the defaults' fields of the same name.
func (b *testBundle) spec(extra string) *jobspec.Spec {
	b.t.Helper()
	fields := map[string]string{
		"name":       b.job,
		"table":      b.db.Table("orders"),
		"key":        "id",
		"pending":    "status IS NULL",
		"task_span":  "10000",
		"read_batch": "1000",
		"batch":      "200",
		"sleep":      "0s",
		"set":        "status = 's' || legacy_state, hits = hits + 1",
	}
	order := []string{"name", "table", "key", "pending", "task_span", "read_batch", "batch", "sleep", "set"}
	for _, line := range strings.Split(extra, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if k == "sql" || k == "delete" || k == "copy" {
			delete(fields, "set")
		}
		if _, seen := fields[k]; !seen {
			order = append(order, k)
		}
		fields[k] = strings.TrimSpace(v)
	}
	var y strings.Builder
	for _, k := range order {
		if v, ok := fields[k]; ok {
			fmt.Fprintf(&y, "%s: %s\n", k, v)
		}
	}
	spec, err := jobspec.Parse([]byte(y.String()))
	require.NoError(b.t, err, y.String())
	return spec
}

func (b *testBundle) start(spec *jobspec.Spec) *control.StartResult {
	b.t.Helper()
	res, err := b.ctl.Start(context.Background(), b.db.Pool, spec, b.redis.Queue)
	require.NoError(b.t, err)
	return res
}

type workerOpts struct {
	concurrency int
	// noGuard leaves out the guard loop every real worker runs.
	noGuard  bool
	metrics  *metrics.Metrics
	draining func() bool
	pools    runner.PoolFunc
	// slotLease is the max_workers slot lease; zero keeps the default.
	slotLease time.Duration
	// log, when set, gets the worker's log lines too.
	log io.Writer
}

// worker starts one asynq server running the runner, shut down at cleanup.
func (b *testBundle) worker(o workerOpts) *asynq.Server {
	b.t.Helper()
	if o.concurrency == 0 {
		o.concurrency = 1
	}
	pools := o.pools
	if pools == nil {
		pools = b.pools()
	}
	log := ebbtest.Logger(b.t)
	if o.log != nil {
		log = slog.New(slog.NewTextHandler(o.log, nil))
	}
	// Like the worker binary, a stop drains: handlers hand their ranges
	// back between batches instead of running into the shutdown timeout.
	var stopping atomic.Bool
	draining := func() bool { return stopping.Load() || (o.draining != nil && o.draining()) }
	client := asynq.NewClientFromRedisClient(b.redis.Client)
	id := "w-" + ebbtest.Suffix()
	r, err := runner.New(runner.Config{
		Ledger: b.ledger, ID: id, Enqueue: rangetask.Enqueuer(client, nil),
		Pools: pools, Logger: log, Draining: draining, PauseRecheck: 200 * time.Millisecond, Metrics: o.metrics,
		SlotLease: o.slotLease,
	})
	require.NoError(b.t, err)
	if !o.noGuard {
		g, err := leader.New(leader.Config{
			Ledger: b.ledger, ID: id, Pools: pools, Logger: log, Tick: 100 * time.Millisecond, Hold: time.Second,
			Getenv: b.getenv,
		})
		require.NoError(b.t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = g.Run(ctx)
		}()
		b.t.Cleanup(func() {
			cancel()
			<-done
		})
	}
	srv := asynq.NewServerFromRedisClient(b.redis.Client, runner.ServerConfig(runner.ServerOptions{
		Queue: b.redis.Queue, Concurrency: o.concurrency, ShutdownTimeout: 10 * time.Second, Logger: log,
	}))
	require.NoError(b.t, srv.Start(r))
	var once atomic.Bool
	b.t.Cleanup(func() {
		if once.CompareAndSwap(false, true) {
			stopping.Store(true)
			srv.Shutdown()
		}
	})
	return srv
}

// assertFilledOnce: no row left pending and every row written exactly once
// (hits counts the writes), the invariant of every crash and pause path.
func (b *testBundle) assertFilledOnce() {
	b.t.Helper()
	require.Zero(b.t, b.db.Count(b.t, "SELECT count(*) FROM "+b.db.Table("orders")+" WHERE status IS NULL"), "rows skipped")
	require.Zero(b.t, b.db.Count(b.t, "SELECT count(*) FROM "+b.db.Table("orders")+" WHERE hits <> 1"), "rows written more than once")
}

func (b *testBundle) pools() runner.PoolFunc {
	return func(context.Context, string) (*pgxpool.Pool, error) { return b.db.Pool, nil }
}

func (b *testBundle) status() *control.Status {
	b.t.Helper()
	s, err := b.ctl.Status(context.Background(), b.job)
	require.NoError(b.t, err)
	return s
}

// settled waits until no handler of the test's queue is active, so every
// batch that was in flight when the job paused has committed (a pause lets
// the batch in flight finish), and returns the status then.
func (b *testBundle) settled() *control.Status {
	b.t.Helper()
	// A paused job's ranges are held in place (hold.go), so the sign that
	// the batches in flight landed is a batch count that stops moving.
	last := int64(-1)
	ebbtest.Eventually(b.t, "the batches in flight landed", func() bool {
		n := b.status().Batches
		if n == last {
			return true
		}
		last = n
		time.Sleep(300 * time.Millisecond)
		return false
	})
	return b.status()
}

func (b *testBundle) waitState(state string) *control.Status {
	b.t.Helper()
	var s *control.Status
	ebbtest.Eventually(b.t, "job state "+state, func() bool {
		s = b.status()
		return s.State == state
	})
	return s
}

// TestBackfill fills 200,000 rows with three workers: every pending row gets
// the right value exactly once, rows that were not pending or lie outside the
// job's range are untouched, and the ledger shows every range done.
func TestBackfill(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(200_000)
	orders := b.db.Table("orders")
	// Not pending: must keep its value.
	b.db.Exec(t, "UPDATE "+orders+" SET status = 'keep' WHERE id % 1000 = 0")
	// Outside the fixed range: must stay pending.
	b.db.Exec(t, "INSERT INTO "+orders+" (id, legacy_state) VALUES (200001, 1), (-5, 2)")
	spec := b.spec("range: {from: 1, to: 200000}\ntask_span: 20000\n")
	res := b.start(spec)
	require.Equal(t, int64(10), res.Ranges)
	require.Equal(t, 10, res.Enqueued)
	for range 3 {
		b.worker(workerOpts{concurrency: 2})
	}
	s := b.waitState(control.StateDone)

	require.Equal(t, int64(10), s.RangesDone)
	require.Zero(t, s.RangesFailed)
	require.Equal(t, int64(200_000-200), s.RowsDone)
	require.Zero(t, b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE id BETWEEN 1 AND 200000 AND status IS NULL"))
	require.Zero(t, b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE id BETWEEN 1 AND 200000 AND status <> 'keep' AND (status <> 's' || legacy_state OR hits <> 1)"))
	require.Equal(t, int64(200), b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE status = 'keep' AND hits = 0"))
	require.Equal(t, int64(2), b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE id IN (200001, -5) AND status IS NULL AND hits = 0"))
	done, err := b.ledger.DoneRanges(context.Background(), b.job)
	require.NoError(t, err)
	require.Len(t, done, 10)
}

// TestStartTwice: a second start adds no task and says so in its counts.
func TestStartTwice(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(30_000)
	spec := b.spec("")
	first := b.start(spec)
	require.Equal(t, 3, first.Enqueued)
	second := b.start(spec)
	require.Zero(t, second.Enqueued)
	require.Equal(t, 3, second.AlreadyQueued)
	info, err := asynq.NewInspectorFromRedisClient(b.redis.Client).GetQueueInfo(b.redis.Queue)
	require.NoError(t, err)
	require.Equal(t, 3, info.Size, "tasks in the queue")
	require.Equal(t, control.StateQueued, b.status().State)
}

// TestRestartAfterRedisLoss: when Redis lost the queue and the ledger, start
// rebuilds both, and ranges already done in the database are no-ops.
func TestRestartAfterQueueLoss(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(30_000)
	spec := b.spec("")
	b.start(spec)
	// The queue is lost (e.g. Redis restarted without persistence) but the
	// ledger survived: start must re-enqueue exactly the ranges not done.
	ctx := context.Background()
	require.NoError(t, b.ledger.MarkDone(ctx, b.job, 0, 0))
	insp := asynq.NewInspectorFromRedisClient(b.redis.Client)
	_, err := insp.DeleteAllPendingTasks(b.redis.Queue)
	require.NoError(t, err)
	res := b.start(spec)
	require.Equal(t, 2, res.Enqueued)
	require.Equal(t, 1, res.AlreadyDone)
	b.worker(workerOpts{})
	b.waitState(control.StateDone)
	// Range 0 was marked done without running, so its rows stay pending:
	// the ledger, not the queue, is the truth about what is done.
	require.Equal(t, int64(10000), b.db.Count(t, "SELECT count(*) FROM "+b.db.Table("orders")+" WHERE status IS NULL"))
}

// TestPause: with any pause switch set, at most the batches in flight commit
// and then nothing for three seconds; after resume the job completes.
func TestPause(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		pause  func(b *testBundle) error
		resume func(b *testBundle) error
	}{
		{"global key", func(b *testBundle) error {
			return b.redis.Client.Set(context.Background(), b.ledger.GlobalPauseKey(), "1", 0).Err()
		}, func(b *testBundle) error {
			return b.redis.Client.Del(context.Background(), b.ledger.GlobalPauseKey()).Err()
		}},
		{"job key", func(b *testBundle) error { return b.ctl.Pause(context.Background(), b.job, "runner test") },
			func(b *testBundle) error { return b.ctl.Resume(context.Background(), b.job, "test") }},
		{"garbage value in job key", func(b *testBundle) error {
			return b.redis.Client.Set(context.Background(), b.ledger.PauseKey(b.job), "banana", 0).Err()
		}, func(b *testBundle) error { return b.ctl.Resume(context.Background(), b.job, "test") }},
		{"asynq queue", func(b *testBundle) error {
			return asynq.NewInspectorFromRedisClient(b.redis.Client).PauseQueue(b.redis.Queue)
		}, func(b *testBundle) error {
			return asynq.NewInspectorFromRedisClient(b.redis.Client).UnpauseQueue(b.redis.Queue)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			if tc.name == "global key" {
				// The global key is global to its prefix: this test has its own.
				b.ledger = ledger.New(b.redis.Client, b.redis.Prefix)
			}
			b.seed(60_000)
			spec := b.spec("batch: 100\nsleep: 5ms\n")
			b.start(spec)
			b.worker(workerOpts{concurrency: 2})
			ebbtest.Eventually(t, "some batches committed", func() bool { return b.status().Batches >= 5 })

			require.NoError(t, tc.pause(b))
			// At most one batch per busy handler was in flight when the
			// switch flipped; wait for those to land.
			before := b.status().Batches
			require.Equal(t, control.StatePaused, b.status().State)
			settled := b.settled().Batches
			require.LessOrEqual(t, settled-before, int64(2), "batches committed after pause beyond those in flight")
			ebbtest.Never(t, 3*time.Second, "a commit while paused", func() bool {
				return b.status().Batches != settled
			})

			require.NoError(t, tc.resume(b))
			s := b.waitState(control.StateDone)
			require.Equal(t, int64(60_000), s.RowsDone)
			b.assertFilledOnce()
		})
	}
}

// TestPermanentError fails the range at once with the database's message in
// status, without retrying.
func TestPermanentError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(10_000)
	// Division by zero only shows at execution, so preflight lets it pass.
	spec := b.spec("set: status = (1 / (legacy_state - legacy_state))::text\n")
	b.start(spec)
	b.worker(workerOpts{})
	s := b.waitState(control.StateFailed)
	require.Equal(t, int64(1), s.RangesFailed)
	require.Len(t, s.Failures, 1)
	require.Contains(t, s.Failures[0].Reason, "division by zero")
	require.Contains(t, s.Failures[0].Reason, "22012")
	info, err := asynq.NewInspectorFromRedisClient(b.redis.Client).GetTaskInfo(b.redis.Queue, rangetask.TaskID(b.job, 0))
	require.NoError(t, err)
	require.Equal(t, asynq.TaskStateArchived, info.State)
	require.Zero(t, info.Retried, "a permanent error must not be retried")

	// Fixing the job and starting again retries the failed range.
	fixed := b.spec("")
	res := b.start(fixed)
	require.Equal(t, 1, res.Requeued)
	b.waitState(control.StateDone)
}

// TestMalformedTasks: a task with a garbage payload and a task of a job
// without a spec are archived with a reason; the worker keeps serving.
func TestMalformedTasks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(20_000)
	client := asynq.NewClientFromRedisClient(b.redis.Client)
	_, err := client.Enqueue(asynq.NewTask(rangetask.TaskType, []byte("{not json")), asynq.Queue(b.redis.Queue), asynq.TaskID("garbage"))
	require.NoError(t, err)
	orphan, _, err := rangetask.NewTask(rangetask.Payload{Job: "no-such-job", Range: 0, Lo: keyspace.Int(1), Hi: keyspace.Int(10)})
	require.NoError(t, err)
	_, err = client.Enqueue(orphan, asynq.Queue(b.redis.Queue), asynq.TaskID("orphan"))
	require.NoError(t, err)
	b.start(b.spec(""))
	b.worker(workerOpts{})
	b.waitState(control.StateDone)

	insp := asynq.NewInspectorFromRedisClient(b.redis.Client)
	for id, want := range map[string]string{"garbage": "malformed range task payload", "orphan": "has no spec in Redis"} {
		var info *asynq.TaskInfo
		ebbtest.Eventually(t, id+" archived", func() bool {
			info, err = insp.GetTaskInfo(b.redis.Queue, id)
			return err == nil && info.State == asynq.TaskStateArchived
		})
		require.Contains(t, info.LastErr, want)
	}
}

// TestDrain: a draining worker finishes its batch, checkpoints and hands the
// range back without a failure; another worker completes the job.
func TestDrain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(30_000)
	b.start(b.spec("task_span: 30000\nbatch: 100\nsleep: 5ms\n"))
	var draining atomic.Bool
	first := b.worker(workerOpts{draining: draining.Load})
	ebbtest.Eventually(t, "some batches committed", func() bool { return b.status().Batches >= 3 })
	draining.Store(true)
	first.Shutdown()
	ctx := context.Background()
	cp, ok, err := b.ledger.Checkpoint(ctx, b.job, 0)
	require.NoError(t, err)
	require.True(t, ok, "the drained range has a checkpoint")
	at, err := strconv.ParseInt(cp.String(), 10, 64)
	require.NoError(t, err)
	require.Less(t, at, int64(30_000))
	info, err := asynq.NewInspectorFromRedisClient(b.redis.Client).GetTaskInfo(b.redis.Queue, rangetask.TaskID(b.job, 0))
	require.NoError(t, err)
	require.Zero(t, info.Retried, "a drain is not a failure")
	b.worker(workerOpts{})
	b.waitState(control.StateDone)
	b.assertFilledOnce()
}

// TestRedisLoss: after Redis lost everything of a half-done job (queue,
// ledger, spec), start again rebuilds it and the job completes; rows written
// before the loss are not written again.
func TestRedisLoss(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(30_000)
	spec := b.spec("batch: 100\n")
	b.start(spec)
	ctx := context.Background()
	// Half the work happened before the loss.
	b.db.Exec(t, "UPDATE "+b.db.Table("orders")+" SET status = 's' || legacy_state, hits = 1 WHERE id <= 15000")
	for _, pattern := range []string{b.redis.Prefix + "*", "asynq:{" + b.redis.Queue + "}:*"} {
		keys, err := b.redis.Client.Keys(ctx, pattern).Result()
		require.NoError(t, err)
		require.NoError(t, b.redis.Client.Del(ctx, keys...).Err())
	}
	_, err := b.ctl.Status(ctx, b.job)
	require.ErrorIs(t, err, control.ErrUnknownJob)

	res := b.start(spec)
	require.Equal(t, 3, res.Enqueued)
	b.worker(workerOpts{})
	s := b.waitState(control.StateDone)
	require.Equal(t, int64(15_000), s.RowsDone, "only the rows still pending are written")
	b.assertFilledOnce()
}

// TestPausedJobLooksPaused: ranges of a paused job are held where they
// are, not handed back through asynq's retry set, so Asynqmon shows the
// job's tasks active and pending, never as failing retries; the pause is
// one "job paused" line, with no range start; resume runs them on.
func TestPausedJobLooksPaused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(20_000)
	b.start(b.spec("task_span: 2000\nguard: {rules: []}\n"))
	require.NoError(t, b.ctl.Pause(context.Background(), b.job, "test"))
	var log ebbtest.Buffer
	b.worker(workerOpts{concurrency: 2, noGuard: true, log: &log})
	insp := asynq.NewInspectorFromRedisClient(b.redis.Client)
	t.Cleanup(func() { _ = insp.Close() })
	ebbtest.Eventually(t, "two ranges held while paused", func() bool {
		q, err := insp.GetQueueInfo(b.redis.Queue)
		return err == nil && q.Active == 2 && q.Pending == 8
	})
	ebbtest.Never(t, 3*time.Second, "a range handed back to the retry set while paused", func() bool {
		q, err := insp.GetQueueInfo(b.redis.Queue)
		return err != nil || q.Retry > 0
	})
	out := log.String()
	require.Equal(t, 1, strings.Count(out, "msg=\"job paused\""), out)
	require.Zero(t, strings.Count(out, "range start"), "no range started while paused:\n%s", out)
	require.Zero(t, b.status().RowsDone)

	require.NoError(t, b.ctl.Resume(context.Background(), b.job, "test"))
	b.waitState(control.StateDone)
	b.assertFilledOnce()
}

// TestPausedJobLeavesSharedQueue: while another unfinished job uses the
// same queue, a paused job's ranges are handed back rather than held, so
// the other job gets the worker (here the only slot) and finishes.
func TestPausedJobLeavesSharedQueue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(5_000)
	b.start(b.spec("task_span: 1000\nguard: {rules: []}\n"))
	require.NoError(t, b.ctl.Pause(context.Background(), b.job, "test"))
	other := *b.spec("guard: {rules: []}\n")
	other.Name = b.job + "-other"
	b.start(&other)
	b.worker(workerOpts{concurrency: 1, noGuard: true})
	ebbtest.Eventually(t, "the other job done while the first is paused", func() bool {
		s, err := b.ctl.Status(context.Background(), other.Name)
		return err == nil && s.State == control.StateDone
	})
	require.Equal(t, control.StatePaused, b.status().State)
}
