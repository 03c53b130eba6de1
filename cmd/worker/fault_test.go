package main

import (
	"context"
	"math/rand/v2"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/throwaway"
)

// The fault tests: each breaks a server under a running fleet of worker
// processes and checks the job still ends with every row written exactly
// once. docs/reliability.md lists them with what ebb does in each.

// TestPostgresOutage: PostgreSQL goes away for 30 s (a failover or a
// restart) under two workers. Ranges are handed back with a growing
// backoff instead of burning their retries, no range fails, and the job
// finishes by itself once the database answers.
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := ebbtest.ThrowawayPostgres(t, throwaway.PostgresOptions{})
	b := setupServers(t, pg.URL, ebbtest.RedisURL(), ordersDDL(60_000), "id", "task_span: 5000\nbatch: 200\nsleep: 20ms\nretries: 3\n")
	w1, w2 := b.worker(t), b.worker(t)
	ebbtest.Eventually(t, "the fleet committed batches", func() bool { return b.status(t).Batches >= 10 })

	pg.Stop()
	down := time.Now()
	ebbtest.Eventually(t, "a worker says the database is unreachable", func() bool {
		return strings.Contains(w1.log()+w2.log(), "database unreachable")
	})
	// The outage lasts as long as a routine failover does.
	time.Sleep(time.Until(down.Add(30 * time.Second)))
	require.Zero(t, b.status(t).RangesFailed, "an outage fails no range")
	require.NoError(t, pg.Start(ctx))

	ebbtest.Eventually(t, "job done", func() bool { return b.status(t).State == control.StateDone })
	require.Zero(t, b.status(t).RangesFailed)
	b.assertExactlyOnce(t)
	require.Contains(t, w1.log()+w2.log(), "database answers again")
}

// TestTerminateBackends: the workers' sessions are ended with
// pg_terminate_backend ten times while they write. The batch in flight
// rolls back and is redone; the job completes with every row written
// once and no range failed.
func TestTerminateBackends(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Paced (10 s at the rate) so the rounds land while it writes.
	b := setup(t, 40_000, "task_span: 10000\nbatch: 100\nsleep: 0s\nrate: 4000\nretries: 2\n")
	// The workers' sessions carry a name of this test's own, so only they
	// are ended, not those of other tests sharing the server.
	app := "ebbtest-" + ebbtest.Suffix()
	u, err := url.Parse(ebbtest.DatabaseURL())
	require.NoError(t, err)
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	b.env = append(b.env, "EBB_TEST_DSN="+u.String())
	b.worker(t)
	b.worker(t)
	var killed int64
	for round := 0; round < 10; round++ {
		before := b.status(t).Batches
		ebbtest.Eventually(t, "the fleet commits again", func() bool {
			s := b.status(t)
			return s.Batches > before+3 || s.State == control.StateDone
		})
		var n int64
		require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE application_name = $1`, app).Scan(&n))
		killed += n
	}
	require.Positive(t, killed, "sessions were ended")
	ebbtest.Eventually(t, "job done", func() bool { return b.status(t).State == control.StateDone })
	require.Zero(t, b.status(t).RangesFailed)
	b.assertExactlyOnce(t)
}

// TestReadOnlyDatabase: a database that takes no writes (a standby, a
// read-only switch) pauses the job with the database's own message
// instead of failing its ranges; nothing is written; after the database
// is writable again and an operator resumes, the job completes.
func TestReadOnlyDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, url := ebbtest.Database(t)
	b := setupOn(t, url, ordersDDL(5_000), "id", "task_span: 1000\n")
	name := strings.TrimPrefix(b.db.Pool.Config().ConnConfig.Database, "/")
	b.db.Exec(t, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" SET default_transaction_read_only = on")
	w := b.worker(t)

	ebbtest.Eventually(t, "the job pauses itself", func() bool {
		return strings.Contains(b.status(t).PauseReason, "takes no writes")
	})
	s := b.status(t)
	require.Contains(t, s.PauseReason, "read-only transaction", "the database's own message")
	require.Zero(t, s.RangesFailed, "no range burns its retries")
	require.Zero(t, b.db.Count(t, "SELECT count(*) FROM "+b.db.Table("orders")+" WHERE status IS NOT NULL"), "nothing half-written")
	require.Contains(t, w.log(), "job paused: the database takes no writes")

	b.db.Exec(t, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" RESET default_transaction_read_only")
	require.NoError(t, b.ctl.Resume(ctx, b.job, "test"))
	ebbtest.Eventually(t, "job done", func() bool { return b.status(t).State == control.StateDone })
	b.assertExactlyOnce(t)
}

// TestRedisLost: Redis restarts with its data gone mid-job. The workers
// stop writing (the ledger is gone: fail closed) and reconnect by
// themselves; enqueuer start with the same job file starts it again, and
// the job completes with nothing skipped and nothing written twice.
func TestRedisLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rs := ebbtest.ThrowawayRedis(t, throwaway.RedisOptions{})
	b := setupServers(t, ebbtest.DatabaseURL(), rs.URL, ordersDDL(40_000), "id", "task_span: 5000\nbatch: 100\nsleep: 20ms\n")
	w := b.worker(t)
	ebbtest.Eventually(t, "the worker committed batches", func() bool { return b.status(t).Batches >= 10 })

	rs.Stop()
	require.NoError(t, rs.Start(ctx))
	written := func() int64 {
		return b.db.Count(t, "SELECT count(*) FROM "+b.db.Table("orders")+" WHERE status IS NOT NULL")
	}
	// Whatever was in flight settles; then nothing more is written.
	var settled int64 = -1
	ebbtest.Eventually(t, "writes stop", func() bool {
		n := written()
		same := n == settled
		settled = n
		if !same {
			time.Sleep(500 * time.Millisecond)
		}
		return same
	})
	ebbtest.Never(t, 3*time.Second, "a worker writes while the ledger is gone", func() bool { return written() != settled })
	require.Less(t, settled, int64(40_000))

	_, err := b.ctl.Start(ctx, b.db.Pool, b.spec, b.redis.Queue)
	require.NoError(t, err)
	ebbtest.Eventually(t, "job done", func() bool { return b.status(t).State == control.StateDone })
	b.assertExactlyOnce(t)
	_ = w
}

// TestRedisRestartKeepsData: Redis restarts with its data kept (AOF):
// the fleet carries on by itself and the job completes.
func TestRedisRestartKeepsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rs := ebbtest.ThrowawayRedis(t, throwaway.RedisOptions{AOF: true})
	b := setupServers(t, ebbtest.DatabaseURL(), rs.URL, ordersDDL(40_000), "id", "task_span: 5000\nbatch: 100\nsleep: 20ms\n")
	b.worker(t)
	b.worker(t)
	ebbtest.Eventually(t, "the fleet committed batches", func() bool { return b.status(t).Batches >= 10 })
	rs.Stop()
	time.Sleep(2 * time.Second) // the outage
	require.NoError(t, rs.Start(ctx))
	ebbtest.Eventually(t, "job done", func() bool { return b.status(t).State == control.StateDone })
	require.Zero(t, b.status(t).RangesFailed)
	b.assertExactlyOnce(t)
}

// TestDeadlockStorm: live transactions lock rows one by one in descending
// key order while the fleet's batches lock them ascending, so they
// deadlock. PostgreSQL ends the batch (the live side waits longer before
// it checks), the batch is retried smaller, the job completes with every
// row written exactly once, and the deadlocks are counted in
// ebb_batch_errors_total{reason="deadlock"}. The batch size adapts (batch:
// {size: 400}), so the retry is cut smaller.
func TestDeadlockStorm(t *testing.T) {
	t.Parallel()
	b := setup(t, 20_000, "task_span: 20000\nbatch: {size: 400}\nsleep: 0s\nretries: 20\ntimeouts: {lock: 5s, statement: 10s}\n")
	orders := b.db.Table("orders")
	ctx, stop := context.WithCancel(context.Background())
	var live sync.WaitGroup
	var deadlocksSeen atomic.Int64
	for g := 0; g < 4; g++ {
		live.Add(1)
		go func(g int) {
			defer live.Done()
			for n := 0; ctx.Err() == nil; n++ {
				top := int64(400 + (n*997+g*4999)%19_500)
				err := pgx.BeginFunc(ctx, b.db.Pool, func(tx pgx.Tx) error {
					// The live side checks for deadlocks after the batch
					// does, so the batch is the one PostgreSQL ends.
					if _, err := tx.Exec(ctx, "SET LOCAL deadlock_timeout = '3s'"); err != nil {
						return err
					}
					for id := top; id > top-60; id -= 3 {
						if _, err := tx.Exec(ctx, "UPDATE "+orders+" SET legacy_state = legacy_state WHERE id = $1", id); err != nil {
							return err
						}
						if _, err := tx.Exec(ctx, "SELECT pg_sleep(0.002)"); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil && strings.Contains(err.Error(), "40P01") {
					deadlocksSeen.Add(1)
				}
			}
		}(g)
	}
	defer func() { stop(); live.Wait() }()

	w := b.worker(t)
	addr := metricsAddr(t, w)
	ebbtest.Eventually(t, "a batch ended by a deadlock", func() bool {
		v, _ := sample(scrape(t, addr), "ebb_batch_errors_total", map[string]string{"backfill": b.job, "reason": "deadlock"})
		return v > 0 || b.status(t).State == control.StateDone
	})
	deadlocks, _ := sample(scrape(t, addr), "ebb_batch_errors_total", map[string]string{"backfill": b.job, "reason": "deadlock"})
	stop()
	live.Wait()
	ebbtest.Eventually(t, "job done", func() bool { return b.status(t).State == control.StateDone })
	b.assertExactlyOnce(t)
	require.Positive(t, deadlocks, "the storm deadlocked the fleet's batches (live side saw %d)", deadlocksSeen.Load())
	m := regexp.MustCompile(`transient error, retrying batch.*next_size=(\d+)`).FindStringSubmatch(w.log())
	require.NotNil(t, m, "the deadlocked batch is retried")
	next, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	require.Less(t, next, 400, "and cut smaller")
	require.Zero(t, b.status(t).RangesFailed)
	t.Logf("deadlock storm: %v batches ended by deadlocks, live transactions ended by %d", deadlocks, deadlocksSeen.Load())
}

// TestChaos: 500,000 rows, three worker processes, and twenty rounds of
// kill -9 on a random one followed by a fresh worker. The job completes,
// every row is written, and the counter it increments is 1 on every row.
func TestChaos(t *testing.T) {
	t.Parallel()
	b := setup(t, 500_000, "task_span: 10000\nbatch: 1000\nread_batch: 5000\nsleep: 0s\n")
	fleet := []*proc{b.worker(t), b.worker(t), b.worker(t)}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 13))
	for round := 0; round < 20; round++ {
		before := b.status(t).Batches
		ebbtest.Eventually(t, "the fleet commits between kills", func() bool {
			s := b.status(t)
			return s.Batches >= before+3 || s.State == control.StateDone
		})
		i := rng.IntN(len(fleet))
		require.NoError(t, fleet[i].cmd.Process.Signal(syscall.SIGKILL))
		_ = fleet[i].wait(t)
		fleet[i] = b.worker(t)
	}
	ebbtest.Eventually(t, "job done", func() bool { return b.status(t).State == control.StateDone })
	b.assertExactlyOnce(t)
	s := b.status(t)
	require.Zero(t, s.RangesFailed, "kills are not failures of a range")
	t.Logf("chaos: 500,000 rows, 20 kills: %d batches, %d retries, 0 rows skipped, 0 written twice", s.Batches, s.Retries)
}
