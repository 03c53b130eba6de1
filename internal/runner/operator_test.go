package runner_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/keyspace"
	"github.com/ebbhq/ebb/internal/metrics"
)

// jobKeys lists every Redis key of the test's job, redis_rate's included.
func (b *testBundle) jobKeys() []string {
	b.t.Helper()
	ctx := context.Background()
	var keys []string
	for _, pattern := range []string{b.redis.Prefix + "{" + b.job + "}*", "rate:" + b.redis.Prefix + "{" + b.job + "}*"} {
		k, err := b.redis.Client.Keys(ctx, pattern).Result()
		require.NoError(b.t, err)
		keys = append(keys, k...)
	}
	return keys
}

// jobTasks counts the job's tasks in asynq, in any state.
func (b *testBundle) jobTasks() int {
	b.t.Helper()
	insp := asynq.NewInspectorFromRedisClient(b.redis.Client)
	n := 0
	for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
		insp.ListPendingTasks, insp.ListActiveTasks, insp.ListScheduledTasks,
		insp.ListRetryTasks, insp.ListArchivedTasks, insp.ListCompletedTasks,
	} {
		tasks, err := list(b.redis.Queue)
		require.NoError(b.t, err)
		n += len(tasks)
	}
	return n
}

// TestDryRun: a dry run walks every range and changes no row; status says it
// was a dry run; a real run under the same name is refused until cleanup,
// after which it fills every row.
func TestDryRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(12_000)
	spec := b.spec("task_span: 5000\nguard: {rules: []}\n")
	spec.DryRun = true
	b.start(spec)
	m, err := metrics.New(prometheus.NewRegistry())
	require.NoError(t, err)
	b.worker(workerOpts{concurrency: 2, metrics: m})
	s := b.waitState(control.StateDone)
	require.True(t, s.DryRun)
	require.Equal(t, int64(12_000), s.RowsDone, "rows counts what a real run would write")
	require.Positive(t, testutil.ToFloat64(m.Batches.WithLabelValues(b.job, "rolled_back")), "dry-run batches counted as rolled back")
	require.Zero(t, testutil.ToFloat64(m.Batches.WithLabelValues(b.job, "committed")), "no dry-run batch counted as committed")
	require.Zero(t, testutil.ToFloat64(m.Rows.WithLabelValues(b.job)), "ebb_rows_total counts rows changed, and a dry run changes none")
	orders := b.db.Table("orders")
	require.Equal(t, int64(12_000), b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE status IS NULL AND hits = 0"), "a dry run changed rows")

	ctx := context.Background()
	spec.DryRun = false
	_, err = b.ctl.Start(ctx, b.db.Pool, spec, b.redis.Queue)
	require.ErrorIs(t, err, control.ErrDryRunMismatch)
	require.ErrorContains(t, err, "enqueuer cleanup "+b.job)

	_, err = b.ctl.Cleanup(ctx, b.job, false)
	require.NoError(t, err)
	b.start(spec)
	s = b.waitState(control.StateDone)
	require.False(t, s.DryRun)
	b.assertFilledOnce()
}

// TestCleanup: cleanup refuses a running job, --force removes it anyway, and
// afterwards no key of the job and no task of it is left.
func TestCleanup(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(40_000)
	ctx := context.Background()
	b.start(b.spec("rate: 2000\ntask_span: 5000\nguard: {check_every: 1s}\n"))
	_, err := b.ctl.SetOverrides(ctx, b.job, "test", control.OverrideFlags{MaxWorkers: ptr(3)}, false)
	require.NoError(t, err)
	b.worker(workerOpts{concurrency: 2})
	ebbtest.Eventually(t, "job running", func() bool { return b.status().State == control.StateRunning })

	_, err = b.ctl.Cleanup(ctx, b.job, false)
	require.ErrorIs(t, err, control.ErrJobActive)
	require.ErrorContains(t, err, "enqueuer pause "+b.job)
	require.NotEmpty(t, b.jobKeys(), "a refused cleanup removes nothing")

	res, err := b.ctl.Cleanup(ctx, b.job, true)
	require.NoError(t, err)
	require.Positive(t, res.KeysRemoved)
	require.Positive(t, res.TasksRemoved)
	require.Contains(t, res.Summary(), "job "+b.job+" cleaned up: was running")
	ebbtest.Eventually(t, "no key and no task of the job left", func() bool {
		return len(b.jobKeys()) == 0 && b.jobTasks() == 0
	})
	_, err = b.ctl.Status(ctx, b.job)
	require.ErrorIs(t, err, control.ErrUnknownJob)
}

// TestCleanupPaused: cleanup right after pause, as the refusal advises,
// goes through: it waits for the batches still in flight instead of
// refusing the job that status already shows paused.
func TestCleanupPaused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(40_000)
	ctx := context.Background()
	b.start(b.spec("rate: 2000\ntask_span: 5000\nguard: {rules: []}\n"))
	b.worker(workerOpts{concurrency: 2})
	ebbtest.Eventually(t, "job running", func() bool { return b.status().State == control.StateRunning })

	require.NoError(t, b.ctl.Pause(ctx, b.job, "test"))
	res, err := b.ctl.Cleanup(ctx, b.job, false)
	require.NoError(t, err)
	require.Equal(t, control.StatePaused, res.State)
	require.Zero(t, res.TasksLeft, "every range handed itself back")
	ebbtest.Eventually(t, "no key and no task of the job left", func() bool {
		return len(b.jobKeys()) == 0 && b.jobTasks() == 0
	})
}

// TestCleanupFinished: a finished job's completed tasks and keys go too.
func TestCleanupFinished(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(5_000)
	b.start(b.spec("guard: {rules: []}\n"))
	b.worker(workerOpts{})
	b.waitState(control.StateDone)
	require.Positive(t, b.jobTasks(), "completed tasks are retained")
	res, err := b.ctl.Cleanup(context.Background(), b.job, false)
	require.NoError(t, err)
	require.Equal(t, "done", res.State)
	require.Empty(t, b.jobKeys())
	require.Zero(t, b.jobTasks())
}

// TestVerify: verify passes a finished job, then catches a row corrupted on
// purpose and a row left pending, exits with ErrVerifyFailed and stores its
// report with the job.
func TestVerify(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(30_000)
	b.start(b.spec("task_span: 5000\nguard: {rules: []}\ncheck: status = 's' || legacy_state AND hits = 1\n"))
	b.worker(workerOpts{concurrency: 2})
	b.waitState(control.StateDone)
	ctx := context.Background()
	r, err := b.ctl.Verify(ctx, b.db.Pool, b.job, control.VerifyOptions{ChunkRows: 4000})
	require.NoError(t, err)
	require.True(t, r.OK, "%v", r.Problems)
	require.Zero(t, r.Pending)
	require.Equal(t, int64(30_000), r.Rows, "every row read")
	require.Equal(t, 12, r.Chunks, "6 ranges of 5,000 rows, each read as 4,000 rows and 1,000")

	orders := b.db.Table("orders")
	b.db.Exec(t, "UPDATE "+orders+" SET status = 'corrupt' WHERE id = 1") // first key of the oldest range: always sampled
	b.db.Exec(t, "UPDATE "+orders+" SET status = NULL WHERE id = 17777")  // left pending
	r, err = b.ctl.Verify(ctx, b.db.Pool, b.job, control.VerifyOptions{ChunkRows: 4000})
	require.ErrorIs(t, err, control.ErrVerifyFailed)
	require.False(t, r.OK)
	require.Equal(t, int64(1), r.Pending)
	require.Equal(t, []keyspace.Key{keyspace.Int(17777)}, r.PendingKeys)
	require.Equal(t, []int64{0, 3}, r.DonePending, "the ledger marks the ranges of keys 1 and 17777 done; the database disagrees")
	require.Contains(t, strings.Join(r.Problems, "\n"), "the ledger marks ranges [0 3] done, yet they hold rows found wrong")
	require.Contains(t, r.Mismatches, keyspace.Int(1))
	require.Contains(t, strings.Join(r.Problems, "\n"), "(first keys [17777])", "keys print as they always did")
	require.Equal(t, int64(2), r.Failing, "the corrupted row and the pending one (NULL fails the check)")
	require.Equal(t, int64(1), r.Unselected, "the corrupted row is not pending: the job's statement would not rewrite it")
	require.Equal(t, []int64{0, 3}, []int64{r.Findings[0].Range.ID, r.Findings[1].Range.ID}, "each wrong row's range is named")
	// The spot check is the quick look: it still sees the oldest range's
	// first key.
	r, err = b.ctl.Verify(ctx, b.db.Pool, b.job, control.VerifyOptions{Sample: true})
	require.ErrorIs(t, err, control.ErrVerifyFailed)
	require.Greater(t, r.Sampled, 10)
	require.Contains(t, r.Mismatches, keyspace.Int(1))
	stored, err := b.redis.Client.Get(ctx, b.ledger.VerifyKey(b.job)).Result()
	require.NoError(t, err)
	require.Contains(t, stored, `"ok":false`)
}

// TestBadOverridePauses: a typo in a live override (redis-cli HSET) pauses
// the job with a reason naming the field, burns no retry and fails no
// range; fixing it resumes the job.
func TestBadOverridePauses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(20_000)
	ctx := context.Background()
	b.start(b.spec("rate: 3000\ntask_span: 5000\nguard: {rules: []}\n"))
	b.worker(workerOpts{concurrency: 2})
	ebbtest.Eventually(t, "job running", func() bool { return b.status().RowsDone > 0 })

	require.NoError(t, b.redis.Client.HSet(ctx, b.ledger.OverridesKey(b.job), "rate", "fast").Err())
	s := b.waitState(control.StatePaused)
	require.Contains(t, s.PauseReason, `field rate="fast"`)
	rows := b.settled().RowsDone
	ebbtest.Never(t, 2*time.Second, "rows committed with a bad override", func() bool { return b.status().RowsDone != rows })

	require.NoError(t, b.redis.Client.HDel(ctx, b.ledger.OverridesKey(b.job), "rate").Err())
	s = b.waitState(control.StateDone)
	require.Zero(t, s.RangesFailed)
	b.assertFilledOnce()
}

// TestFinishedStatus: a finished job raises no alarm and its average stops
// at the finish. Its guard decision went stale long ago (the fleet is gone)
// and a pause switch was left on, yet status shows no pause reason; the
// average rate is rows over created → finished, not over created → now.
func TestFinishedStatus(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(3_000)
	ctx := context.Background()
	b.start(b.spec("task_span: 1000\nguard: {check_every: 1s, rules: [{signal: lock_waits, pause_above: 1000}]}\n"))
	// The guard leader of a fleet that stopped an hour ago.
	ok, err := b.ledger.AcquireLeader(ctx, b.job, "gone", time.Hour)
	require.NoError(t, err)
	require.True(t, ok)
	old := time.Now().Add(-time.Hour)
	d, err := json.Marshal(guard.Decision{State: guard.StateRun, Factor: 1, GuardFactor: 1, Leader: "gone", At: old, Expires: old.Add(2 * time.Second)})
	require.NoError(t, err)
	ok, err = b.ledger.PutDecision(ctx, b.job, "gone", d)
	require.NoError(t, err)
	require.True(t, ok)
	require.Contains(t, b.status().PauseReason, "no fresh decision", "an unfinished job with a dead fleet is an alarm")

	for r := int64(0); r < 3; r++ {
		require.NoError(t, b.ledger.Commit(ctx, b.job, r, 0, keyspace.Int((r+1)*1000), 1000, time.Millisecond, time.Second))
		require.NoError(t, b.ledger.MarkDone(ctx, b.job, r, 0))
	}
	// A switch left on by hand (enqueuer pause refuses a finished job).
	require.NoError(t, b.ledger.SetPause(ctx, b.job, "1"))
	meta, err := b.ledger.Meta(ctx, b.job)
	require.NoError(t, err)
	require.False(t, meta.Finished.IsZero(), "the last MarkDone stamps the finish")

	// Pretend the job ran 100 s, from 1000 s ago: the average must not
	// keep decaying over the 900 s since.
	created := time.Now().Add(-1000 * time.Second).Truncate(time.Second)
	require.NoError(t, b.redis.Client.HSet(ctx, b.ledger.MetaKey(b.job),
		"created", created.UTC().Format(time.RFC3339), "finished", created.Add(100*time.Second).Unix()).Err())
	s := b.status()
	require.Equal(t, control.StateDone, s.State)
	require.Empty(t, s.PauseReason)
	require.NotNil(t, s.Finished)
	require.True(t, s.Finished.Equal(created.Add(100*time.Second)))
	require.InDelta(t, 30.0, s.AvgRowsPerSec, 1e-9, "3000 rows over 100 s")
	require.Zero(t, s.ETASeconds)
}

// TestEstimateInRange: the pending estimate behind plan, the runbook's
// duration and status counts only the job's key range, not the whole
// table; and when more rows were written than estimated, progress and ETA
// follow the ranges instead of claiming 100% and an ETA of zero.
func TestEstimateInRange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(20_000)
	ctx := context.Background()
	spec := b.spec("range: {from: 1, to: 2000}\ntask_span: 1000\nguard: {rules: []}\n")
	p, err := control.Plan(ctx, b.db.Pool, spec, nil)
	require.NoError(t, err)
	require.InDelta(t, 2000, p.EstimatedTodo, 1000, "pending rows in [1, 2000] of 20,000")
	b.start(spec)
	s := b.status()
	require.InDelta(t, 2000, s.EstimatedRows, 1000)
	require.Equal(t, control.BasisRows, s.ProgressBasis)

	// Range 0 wrote far more rows than the whole job was estimated to.
	require.NoError(t, b.ledger.Commit(ctx, b.job, 0, 0, keyspace.Int(1000), 3*s.EstimatedRows, time.Millisecond, time.Second))
	require.NoError(t, b.ledger.MarkDone(ctx, b.job, 0, 0))
	s = b.status()
	require.Equal(t, control.BasisRanges, s.ProgressBasis)
	require.Equal(t, 0.5, s.Progress, "one of two ranges done")
	require.Positive(t, s.ETASeconds, "the time one more range took so far, not 0 for a job half done")
}
