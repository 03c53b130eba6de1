package main

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/ebbtest"
)

// TestStalledWorkerFencedOut: a worker frozen mid-range (SIGSTOP) past its
// lease loses the range to another worker, which finishes it. When the
// first wakes up it still holds keys it read before it froze, and its next
// batch is refused by the fence: it commits nothing, logs that it was
// fenced out and moves on. The job's SQL is not idempotent (a counter
// incremented with no pending predicate), so a batch applied twice would
// show as a counter of 2.
func TestStalledWorkerFencedOut(t *testing.T) {
	t.Parallel()
	// One range, read whole in one read: the frozen worker always wakes up
	// holding keys the other worker has written since.
	b := setup(t, 10_000, `sql: UPDATE ORDERS SET hits = hits + 1, status = 's' WHERE id BETWEEN $1 AND $2
task_span: 100000
read_batch: 20000
batch: 100
sleep: 20ms
`)
	stale := b.worker(t)
	ebbtest.Eventually(t, "the first worker committed batches", func() bool { return b.status(t).Batches >= 5 })
	b.stopOutsideTx(t, stale)
	defer func() { _ = stale.cmd.Process.Signal(syscall.SIGCONT) }()
	committed := b.status(t).RowsDone

	// asynq sees the stalled worker's lease as expired (its heartbeats
	// stopped; the test moves the expiry into the past instead of waiting
	// out the 30 s lease and asynq's 30 s allowance), and a new worker's
	// recoverer hands the range to it.
	expireLeases(t, b.redis.Client, b.redis.Queue)
	successor := b.worker(t)
	ebbtest.Eventually(t, "the successor finished the job", func() bool { return b.status(t).State == control.StateDone })
	require.Contains(t, successor.log(), "range start")

	require.NoError(t, stale.cmd.Process.Signal(syscall.SIGCONT))
	ebbtest.Eventually(t, "the woken worker says it was fenced out", func() bool { return strings.Contains(stale.log(), "range fenced out") })
	b.assertExactlyOnce(t)
	s := b.status(t)
	require.Equal(t, control.StateDone, s.State)
	require.GreaterOrEqual(t, s.RowsDone, committed)
	select {
	case <-stale.done:
		t.Fatalf("the fenced-out worker exited: %v", stale.err)
	default:
	}
}

// stopOutsideTx freezes p between two batch transactions: a worker frozen
// inside one would hold its rows until IdleInTransaction ended its session
// (batch's TestIdleInTransaction), which only makes the takeover slower.
func (b *bundle) stopOutsideTx(t *testing.T, p *proc) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(ebbtest.WaitTimeout)
	for time.Now().Before(deadline) {
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGSTOP))
		var open int64
		require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
WHERE state LIKE 'idle in transaction%' AND application_name = 'ebb' AND query LIKE '%' || $1 || '%'`, b.db.Schema).Scan(&open))
		if open == 0 {
			return
		}
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGCONT))
		time.Sleep(3 * time.Millisecond)
	}
	t.Fatal("could not stop the worker between two transactions")
}

// expireLeases moves every lease of queue into the past. The key is
// asynq's ("asynq:{QUEUE}:lease", internal/base LeaseKey), written here
// only to stand in for the passing of time.
func expireLeases(t *testing.T, rdb *redis.Client, queue string) {
	t.Helper()
	ctx := context.Background()
	key := "asynq:{" + queue + "}:lease"
	ids, err := rdb.ZRange(ctx, key, 0, -1).Result()
	require.NoError(t, err)
	require.NotEmpty(t, ids, "the stalled worker holds a lease")
	for _, id := range ids {
		require.NoError(t, rdb.ZAddXX(ctx, key, redis.Z{Score: 1, Member: id}).Err())
	}
}
