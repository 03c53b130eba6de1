package runner_test

import (
	"context"
	"fmt"
	neturl "net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/keyspace"
)

// TestDeleteJob: a delete job removes exactly the rows that match pending
// and nothing else (a control set of rows must survive unchanged), counted
// beforehand by plan's count; verify proves no row still matches, and a
// matching row that comes back into a done range is found and repaired.
func TestDeleteJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(50_000)
	orders := b.db.Table("orders")
	b.db.Exec(t, "UPDATE "+orders+" SET status = 'keep-' || id WHERE legacy_state <> 3")
	survivors := b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE legacy_state <> 3")
	sum := b.db.Count(t, "SELECT sum(id) FROM "+orders+" WHERE legacy_state <> 3")
	doomed := b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE legacy_state = 3")
	require.Positive(t, doomed)
	spec := b.spec("delete: true\npending: legacy_state = 3\ntask_span: 10000\nguard: {rules: []}\n")
	ctx := context.Background()

	counted, err := control.Count(ctx, b.db.Pool, spec, nil)
	require.NoError(t, err)
	require.Equal(t, doomed, counted.Rows, "the dry count is what the job will delete")
	require.Len(t, counted.Ranges, 5)
	require.Equal(t, int64(50_000), b.db.Count(t, "SELECT count(*) FROM "+orders), "counting deletes nothing")

	b.start(spec)
	b.worker(workerOpts{concurrency: 2})
	s := b.waitState(control.StateDone)
	require.Equal(t, doomed, s.RowsDone)
	require.Zero(t, b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE legacy_state = 3"))
	require.Equal(t, survivors, b.db.Count(t, "SELECT count(*) FROM "+orders))
	require.Equal(t, sum, b.db.Count(t, "SELECT sum(id) FROM "+orders), "the same rows survive")
	require.Zero(t, b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE status IS DISTINCT FROM 'keep-' || id"), "survivors untouched")

	r, err := b.ctl.Verify(ctx, b.db.Pool, b.job, control.VerifyOptions{})
	require.NoError(t, err, "%v", r)
	require.Equal(t, survivors, r.Rows)

	// A row to delete comes back in a done range: verify names it,
	// repair deletes it.
	b.db.Exec(t, "INSERT INTO "+orders+" (id, legacy_state) VALUES (23999, 3)")
	r, err = b.ctl.Verify(ctx, b.db.Pool, b.job, control.VerifyOptions{})
	require.ErrorIs(t, err, control.ErrVerifyFailed)
	require.Equal(t, []keyspace.Key{keyspace.Int(23999)}, r.PendingKeys)
	res, err := b.ctl.Repair(ctx, b.db.Pool, b.job, control.VerifyOptions{})
	require.NoError(t, err)
	require.Equal(t, []int64{2}, res.Reopened)
	b.waitState(control.StateDone)
	r, err = b.ctl.Verify(ctx, b.db.Pool, b.job, control.VerifyOptions{})
	require.NoError(t, err, "%v", r)
	require.Equal(t, survivors, b.db.Count(t, "SELECT count(*) FROM "+orders))
}

// TestCopyAcrossDatabases: a copy into another database streams each
// batch through the worker (COPY into a staging table, then an upsert):
// every row arrives once with its values typed by the target (numeric
// scale, timestamptz, NULL); verify compares both databases range by
// range, finds a tampered target row by key, and repair re-copies it.
func TestCopyAcrossDatabases(t *testing.T) {
	t.Parallel()
	b := setup(t)
	other, url := ebbtest.Database(t)
	b.seed(30_000)
	orders, v2 := b.db.Table("orders"), other.Table("orders_v2")
	b.db.Exec(t, "UPDATE "+orders+" SET status = NULL WHERE id % 1000 = 0; UPDATE "+orders+" SET status = 'st' || legacy_state WHERE id % 1000 <> 0")
	other.Exec(t, "CREATE TABLE "+v2+" (id bigint PRIMARY KEY, status text, amount numeric(12,2) NOT NULL, at timestamptz NOT NULL, day date NOT NULL)")
	// The target database prints dates day first and times in Tokyo: the
	// values still travel and compare as the same values.
	u, err := neturl.Parse(url)
	require.NoError(t, err)
	other.Exec(t, fmt.Sprintf("ALTER DATABASE %s SET DateStyle = 'SQL, DMY'; ALTER DATABASE %[1]s SET TimeZone = 'Asia/Tokyo'", strings.TrimPrefix(u.Path, "/")))
	other.Pool.Reset()
	b.env["TARGET_DSN"] = url
	pools := func(_ context.Context, env string) (*pgxpool.Pool, error) {
		if env == "TARGET_DSN" {
			return other.Pool, nil
		}
		return b.db.Pool, nil
	}
	spec := b.spec("copy: {to: " + v2 + ", database_env: TARGET_DSN, on_conflict: update, columns: {id: id, status: status, amount: \"legacy_state / 3.0\", at: \"timestamptz '2024-01-01 00:00:00+00' + id * interval '1 minute'\", day: \"date '2024-01-01' + (id % 300)::int\"}}\n" +
		"pending: \"true\"\ntask_span: 10000\nread_batch: 2000\nbatch: 1000\nguard: {rules: []}\n")
	b.start(spec)
	b.worker(workerOpts{concurrency: 2, pools: pools})
	s := b.waitState(control.StateDone)
	require.Equal(t, int64(30_000), s.RowsDone)
	require.Equal(t, int64(30_000), other.Count(t, "SELECT count(*) FROM "+v2))
	require.Equal(t, int64(30), other.Count(t, "SELECT count(*) FROM "+v2+" WHERE status IS NULL"), "NULL travels as NULL")
	require.Equal(t, int64(1), other.Count(t, "SELECT count(*) FROM "+v2+" WHERE id = 5 AND amount = 1.67 AND at = '2024-01-01 00:05:00+00' AND day = date '2024-01-06'"), "typed by the target")
	require.Equal(t, int64(1), other.Count(t, "SELECT count(*) FROM "+v2+" WHERE id = 40 AND day = date '2024-02-10'"), "a date read back as the same day, whatever the DateStyle")

	ctx := context.Background()
	r, err := b.ctl.Verify(ctx, b.db.Pool, b.job, control.VerifyOptions{})
	require.NoError(t, err, "%v", r)
	require.Equal(t, int64(30_000), r.Rows)

	other.Exec(t, "UPDATE "+v2+" SET amount = 0 WHERE id = 23456")
	r, err = b.ctl.Verify(ctx, b.db.Pool, b.job, control.VerifyOptions{})
	require.ErrorIs(t, err, control.ErrVerifyFailed)
	require.Equal(t, []keyspace.Key{keyspace.Int(23456)}, r.DiffKeys)
	require.Equal(t, int64(1), r.Differing)
	res, err := b.ctl.Repair(ctx, b.db.Pool, b.job, control.VerifyOptions{})
	require.NoError(t, err)
	require.Equal(t, []int64{2}, res.Reopened)
	ebbtest.Eventually(t, "re-copied", func() bool {
		return other.Count(t, "SELECT count(*) FROM "+v2+" WHERE id = 23456 AND amount <> 0") == 1
	})
	b.waitState(control.StateDone)
	r, err = b.ctl.Verify(ctx, b.db.Pool, b.job, control.VerifyOptions{})
	require.NoError(t, err, "%v", r)
}
