package runner_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/control"
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
