package runner_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/keyspace"
)

// TestRepairOneCorruptedRow: in a finished 100,000-row job, one row
// corrupted where no spot check looks fails verify, which names its key
// and range; repair reopens that range alone, the fleet redoes it, and
// verify passes with the row right again.
func TestRepairOneCorruptedRow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(100_000)
	b.start(b.spec("pending: status IS DISTINCT FROM 's' || legacy_state\nset: status = 's' || legacy_state\ntask_span: 20000\nread_batch: 5000\nbatch: 2000\n" +
		"guard: {rules: []}\ncheck: status = 's' || legacy_state\n"))
	b.worker(workerOpts{concurrency: 2})
	b.waitState(control.StateDone)
	ctx := context.Background()
	r, err := b.ctl.Verify(ctx, b.db.Pool, b.job, control.VerifyOptions{})
	require.NoError(t, err)
	require.Equal(t, int64(100_000), r.Rows)

	orders := b.db.Table("orders")
	b.db.Exec(t, "UPDATE "+orders+" SET status = 'corrupt' WHERE id = 54321")
	r, err = b.ctl.Verify(ctx, b.db.Pool, b.job, control.VerifyOptions{})
	require.ErrorIs(t, err, control.ErrVerifyFailed)
	require.Equal(t, []keyspace.Key{keyspace.Int(54321)}, r.Mismatches)
	require.Len(t, r.Findings, 1)
	require.Equal(t, int64(2), r.Findings[0].Range.ID, "keys 40001..60000")
	require.Equal(t, []int64{2}, r.DonePending, "the ledger says done; the database disagrees")

	res, err := b.ctl.Repair(ctx, b.db.Pool, b.job, control.VerifyOptions{})
	require.NoError(t, err)
	require.Equal(t, []int64{2}, res.Reopened)
	ebbtest.Eventually(t, "row repaired", func() bool {
		return b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE id = 54321 AND status = 's' || legacy_state") == 1
	})
	b.waitState(control.StateDone)
	r, err = b.ctl.Verify(ctx, b.db.Pool, b.job, control.VerifyOptions{})
	require.NoError(t, err, "%v", r)
	require.True(t, r.OK)

	// Nothing left to repair: repair says so and reopens nothing.
	res, err = b.ctl.Repair(ctx, b.db.Pool, b.job, control.VerifyOptions{})
	require.NoError(t, err)
	require.Empty(t, res.Reopened)
}

// TestRepairRefusesRowsTheJobWouldNotRewrite: a row that fails the check
// but does not match the pending predicate cannot be fixed by redoing its
// range; repair says so, reopens nothing and leaves the ledger alone
// rather than looping.
func TestRepairRefusesRowsTheJobWouldNotRewrite(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(20_000)
	b.start(b.spec("guard: {rules: []}\ncheck: status = 's' || legacy_state\n"))
	b.worker(workerOpts{concurrency: 2})
	b.waitState(control.StateDone)
	b.db.Exec(t, "UPDATE "+b.db.Table("orders")+" SET status = 'corrupt' WHERE id = 12345")
	res, err := b.ctl.Repair(context.Background(), b.db.Pool, b.job, control.VerifyOptions{})
	require.ErrorIs(t, err, control.ErrNotRepairable)
	require.ErrorContains(t, err, "without matching the pending predicate")
	require.Empty(t, res.Reopened)
	require.Equal(t, []int64{1}, res.Unrepairable)
	require.Equal(t, int64(1), res.Report.Unselected)
	s := b.status()
	require.Equal(t, control.StateDone, s.State, "the ledger is untouched")
}

// TestVerifyUnderLiveUpdates: live traffic keeps writing rows the way the
// application does (the new column with the old) while verify reads every
// row: no false failure.
func TestVerifyUnderLiveUpdates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.seed(30_000)
	b.start(b.spec("guard: {rules: []}\ncheck: status = 's' || legacy_state\n"))
	b.worker(workerOpts{concurrency: 2})
	b.waitState(control.StateDone)
	orders := b.db.Table("orders")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var updates int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			id := (i*7919)%30_000 + 1
			// One statement moves both columns: never wrong in between.
			if _, err := b.db.Pool.Exec(ctx, fmt.Sprintf("UPDATE %s SET legacy_state = (legacy_state + 1) %% 7, status = 's' || ((legacy_state + 1) %% 7) WHERE id = $1", orders), id); err == nil {
				updates++
			}
		}
	}()
	r, err := b.ctl.Verify(context.Background(), b.db.Pool, b.job, control.VerifyOptions{ChunkRows: 500})
	cancel()
	wg.Wait()
	require.NoError(t, err, "%v", r)
	require.True(t, r.OK)
	require.Positive(t, updates, "live traffic ran during verify")
	require.Equal(t, int64(30_000), r.Rows)
}
