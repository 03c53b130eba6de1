package main

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
)

// TestCopyCrash: a copy of 200,000 rows by two workers, one killed with
// kill -9 mid-range, ends with source and target identical in count and
// checksum (the redone batch inserted nothing twice); verify proves it,
// then finds a target row altered afterwards and one deleted, by key, and
// repair re-copies their ranges until verify passes again.
func TestCopyCrash(t *testing.T) {
	t.Parallel()
	b := &bundle{db: ebbtest.Schema(t), redis: ebbtest.Redis(t), job: "copy-" + ebbtest.Suffix()}
	b.ctl = control.New(b.redis.Client, b.redis.Prefix, ebbtest.Logger(t))
	t.Cleanup(func() { _ = b.ctl.Close() })
	orders, v2 := b.db.Table("orders"), b.db.Table("orders_v2")
	b.db.Exec(t, fmt.Sprintf(`CREATE TABLE %s (id bigint PRIMARY KEY, legacy_state int NOT NULL, amount numeric(10,2) NOT NULL);
		INSERT INTO %[1]s SELECT g, g %% 5, g / 100.0 FROM generate_series(1, 200000) g;
		ANALYZE %[1]s;
		CREATE TABLE %s (id bigint PRIMARY KEY, state text NOT NULL, cents bigint NOT NULL)`, orders, v2))
	spec, err := jobspec.Parse([]byte(fmt.Sprintf(`name: %s
table: %s
key: id
pending: "true"
copy:
  to: %s
  columns: {id: id, state: "'s' || legacy_state", cents: amount * 100}
  on_conflict: update
task_span: 50000
read_batch: 5000
batch: 1000
sleep: 10ms
guard: {rules: []}
database_env: EBB_TEST_DSN
`, b.job, orders, v2)))
	require.NoError(t, err)
	b.env = []string{"REDIS_URL=" + ebbtest.RedisURL(), "EBB_PREFIX=" + b.redis.Prefix, "EBB_TEST_DSN=" + ebbtest.DatabaseURL(), "DATABASE_URL="}
	ctx := context.Background()
	_, err = b.ctl.Start(ctx, b.db.Pool, spec, b.redis.Queue)
	require.NoError(t, err)

	victim := b.worker(t)
	b.worker(t)
	ebbtest.Eventually(t, "the victim committed batches", func() bool {
		return strings.Contains(victim.log(), "range start") && b.status(t).Batches >= 5
	})
	require.NoError(t, victim.cmd.Process.Signal(syscall.SIGKILL))
	_ = victim.wait(t)
	b.worker(t)
	ebbtest.Eventually(t, "job done", func() bool { return b.status(t).State == control.StateDone })

	same := func() bool {
		return b.db.Count(t, fmt.Sprintf(`SELECT count(*) FROM (
			(SELECT id, 's' || legacy_state, (amount * 100)::bigint FROM %s EXCEPT SELECT id, state, cents FROM %s)
			UNION ALL (SELECT id, state, cents FROM %[2]s EXCEPT SELECT id, 's' || legacy_state, (amount * 100)::bigint FROM %[1]s)) d`, orders, v2)) == 0
	}
	require.Equal(t, int64(200_000), b.db.Count(t, "SELECT count(*) FROM "+v2))
	require.True(t, same(), "target holds exactly the source's rows")
	r, err := b.ctl.Verify(ctx, b.db.Pool, b.job, control.VerifyOptions{})
	require.NoError(t, err, "%v", r)
	require.Equal(t, int64(200_000), r.Rows)

	b.db.Exec(t, "UPDATE "+v2+" SET state = 'tampered' WHERE id = 123456")
	b.db.Exec(t, "DELETE FROM "+v2+" WHERE id = 7")
	r, err = b.ctl.Verify(ctx, b.db.Pool, b.job, control.VerifyOptions{})
	require.ErrorIs(t, err, control.ErrVerifyFailed)
	require.Equal(t, int64(1), r.Differing)
	require.Equal(t, int64(1), r.Missing)
	require.ElementsMatch(t, []keyspace.Key{keyspace.Int(7), keyspace.Int(123456)}, r.DiffKeys)
	res, err := b.ctl.Repair(ctx, b.db.Pool, b.job, control.VerifyOptions{})
	require.NoError(t, err)
	require.Equal(t, []int64{0, 2}, res.Reopened)
	ebbtest.Eventually(t, "re-copied", func() bool { return b.status(t).State == control.StateDone && same() })
	r, err = b.ctl.Verify(ctx, b.db.Pool, b.job, control.VerifyOptions{})
	require.NoError(t, err, "%v", r)
}
