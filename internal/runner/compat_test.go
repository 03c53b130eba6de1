package runner_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/keyspace"
	"github.com/ebbhq/ebb/internal/rangetask"
)

// TestResumeLegacyJob: a job started by an ebb from before key shapes — a
// meta with from/to/span and no slicing, a bare integer cursor, a split
// stored as "lo:hi", tasks whose lo and hi are JSON numbers — resumes
// strictly after its cursor and finishes with every other row written once;
// a second start and verify read the old slicing as the one in force.
func TestResumeLegacyJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(20_000)
	spec := b.spec("task_span: 10000\nguard: {rules: []}\n")
	ctx := context.Background()
	rdb, l := b.redis.Client, b.ledger
	raw, err := spec.JSON()
	require.NoError(t, err)

	// What the old start and its workers left behind: range 0 committed up
	// to key 5000, range 1 split in two after timeouts (both halves queued,
	// the parent done).
	require.NoError(t, rdb.HSet(ctx, l.MetaKey(b.job), map[string]any{
		"queue": b.redis.Queue, "from": 1, "to": 20_000, "span": 10_000, "ranges": 4,
		"created": time.Now().UTC().Format(time.RFC3339), "estimate": 20_000, "dry_run": "false",
	}).Err())
	require.NoError(t, rdb.Set(ctx, l.SpecKey(b.job), raw, 0).Err())
	require.NoError(t, rdb.SAdd(ctx, l.JobsKey(), b.job).Err())
	// Row 5000 is pending although the cursor is at it (a hand edit, say):
	// a resume strictly after the cursor leaves it, an inclusive one would
	// write it.
	b.db.Exec(t, "UPDATE "+b.db.Table("orders")+" SET status = 's' || legacy_state, hits = 1 WHERE id < 5000")
	require.NoError(t, rdb.HSet(ctx, l.CursorKey(b.job), "0", "5000").Err())
	require.NoError(t, rdb.HSet(ctx, l.StatsKey(b.job), "rows", 4999, "batches", 25).Err())
	require.NoError(t, rdb.HSet(ctx, l.SplitsKey(b.job), "2", "10001:15000", "3", "15001:20000", "parent:1", "2,3").Err())
	require.NoError(t, l.MarkDone(ctx, b.job, 1, 0))
	client := asynq.NewClientFromRedisClient(rdb)
	for _, task := range []struct{ id, lo, hi int64 }{{0, 1, 10_000}, {2, 10_001, 15_000}, {3, 15_001, 20_000}} {
		body := fmt.Sprintf(`{"job":%q,"range":%d,"lo":%d,"hi":%d}`, b.job, task.id, task.lo, task.hi)
		_, err := client.EnqueueContext(ctx, asynq.NewTask(rangetask.TaskType, []byte(body)),
			rangetask.TaskOptions(b.redis.Queue, rangetask.TaskID(b.job, task.id))...)
		require.NoError(t, err)
	}

	b.worker(workerOpts{concurrency: 2})
	s := b.waitState(control.StateDone)
	require.Equal(t, int64(4999+15_000), s.RowsDone, "the rows up to the cursor are not written again")
	orders := b.db.Table("orders")
	require.Equal(t, int64(1), b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE status IS NULL AND id = 5000"), "resumed strictly after the cursor")
	require.Equal(t, int64(1), b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE hits <> 1"), "every other row written once")

	res := b.start(spec)
	require.Equal(t, 4, res.AlreadyDone)
	require.Zero(t, res.Enqueued)
	require.False(t, res.KeptSlicing, "the old from/to/span are the job file's slicing")
	require.Equal(t, "1", res.From.String())
	require.Equal(t, "20000", res.To.String())
	r, err := b.ctl.Verify(ctx, b.db.Pool, b.job, control.VerifyOptions{})
	require.ErrorIs(t, err, control.ErrVerifyFailed)
	require.Equal(t, []keyspace.Key{keyspace.Int(5000)}, r.PendingKeys)
	require.Equal(t, []int64{0}, r.DonePending, "verify reads the old slicing and splits")
}
