package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/rangetask"
)

const testSigningKey = "a-signing-key-for-tests-0123456789"

// signedBundle is a job started by an enqueuer with EBB_SIGNING_KEY, for
// workers that verify with the same key.
func signedBundle(t *testing.T, rows int) *bundle {
	t.Helper()
	b := &bundle{db: ebbtest.Schema(t), redis: ebbtest.Redis(t), job: "job-" + ebbtest.Suffix()}
	b.ctl = control.New(b.redis.Client, b.redis.Prefix, ebbtest.Logger(t))
	b.ctl.SetGetenv(func(k string) string {
		if k == "EBB_SIGNING_KEY" {
			return testSigningKey
		}
		return ""
	})
	t.Cleanup(func() { _ = b.ctl.Close() })
	orders := b.db.Table("orders")
	b.db.Exec(t, fmt.Sprintf(ordersDDL(rows), orders))
	spec, err := jobspec.Parse([]byte(fmt.Sprintf("name: %s\ntable: %s\nkey: id\npending: status IS NULL\nset: hits = hits + 1, status = 'done'\ntask_span: 1000\ndatabase_env: EBB_TEST_DSN\n", b.job, orders)))
	require.NoError(t, err)
	b.spec = spec
	_, err = b.ctl.Start(context.Background(), b.db.Pool, spec, b.redis.Queue)
	require.NoError(t, err)
	b.env = []string{"REDIS_URL=" + ebbtest.RedisURL(), "EBB_PREFIX=" + b.redis.Prefix, "EBB_TEST_DSN=" + ebbtest.DatabaseURL(), "DATABASE_URL=", "EBB_SIGNING_KEY=" + testSigningKey}
	return b
}

// TestSignedSpecTampered: with EBB_SIGNING_KEY on both sides, SQL edited
// into the stored spec in Redis never runs: every range is archived with
// "signature mismatch", no row changes, and status says why.
func TestSignedSpecTampered(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := signedBundle(t, 3_000)
	l := ledger.New(b.redis.Client, b.redis.Prefix)
	raw, err := l.Spec(ctx, b.job)
	require.NoError(t, err)
	evil := strings.Replace(string(raw), "status = 'done'", "status = 'pwned'", 1)
	require.NotEqual(t, string(raw), evil)
	require.NoError(t, b.redis.Client.Set(ctx, l.SpecKey(b.job), evil, 0).Err())

	w := b.worker(t)
	ebbtest.Eventually(t, "every range refused", func() bool { return b.status(t).RangesFailed == 3 })
	s := b.status(t)
	require.Equal(t, control.StateFailed, s.State)
	require.Contains(t, s.Failures[0].Reason, "signature mismatch")
	require.Zero(t, b.db.Count(t, "SELECT count(*) FROM "+b.db.Table("orders")+" WHERE status IS NOT NULL"), "no SQL ran")
	require.Contains(t, w.log(), "signature mismatch")

	// The operator starts the job again from the job file: signed anew,
	// it runs.
	_, err = b.ctl.Start(ctx, b.db.Pool, b.spec, b.redis.Queue)
	require.NoError(t, err)
	ebbtest.Eventually(t, "job done", func() bool { return b.status(t).State == control.StateDone })
	b.assertExactlyOnce(t)
}

// TestSignedTaskTampered: a range task written into the queue by hand (or
// edited there) is archived unrun; signed tasks around it run.
func TestSignedTaskTampered(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := signedBundle(t, 1_000)
	client := asynq.NewClientFromRedisClient(b.redis.Client)
	t.Cleanup(func() { _ = client.Close() })
	forged := rangetask.Payload{Job: b.job, Range: 99, Lo: keyspace.Int(1), Hi: keyspace.Int(1000)}
	require.NoError(t, rangetask.Enqueuer(client, nil)(ctx, b.redis.Queue, forged))
	w := b.worker(t)
	ebbtest.Eventually(t, "the forged task refused", func() bool { return strings.Contains(w.log(), "signature mismatch") })
	ebbtest.Eventually(t, "the signed range done", func() bool { return b.status(t).RangesDone == 1 })
}

// TestUnsignedWarns: a worker without a key says once that it runs
// unsigned specs; -require-signing refuses to start without one.
func TestUnsignedWarns(t *testing.T) {
	t.Parallel()
	b := setup(t, 10, "")
	w := b.worker(t)
	ebbtest.Eventually(t, "the warning", func() bool { return strings.Contains(w.log(), "not signed") })
	strict := spawn(t, b.env, "-queue", b.redis.Queue, "-metrics-addr", "", "-require-signing")
	err := strict.wait(t)
	require.Error(t, err)
	require.Contains(t, strict.log(), "-require-signing is set but EBB_SIGNING_KEY is empty")
}
