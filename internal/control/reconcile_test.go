package control_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/rangetask"
)

// TestStatusReconcilesQueue: an unfinished range whose task asynq archived
// shows as failed with asynq's last error, and one whose task is gone
// (deleted in Asynqmon, lost with Redis's data) as lost; a job left with
// nothing that can run is "lost", never "queued".
func TestStatusReconcilesQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, rd := ebbtest.Schema(t), ebbtest.Redis(t)
	orders := db.Table("orders")
	db.Exec(t, `CREATE TABLE `+orders+` (id bigint PRIMARY KEY, status text)`)
	db.Exec(t, `INSERT INTO `+orders+` SELECT g, NULL FROM generate_series(1, 300) g`)
	job := "job-" + ebbtest.Suffix()
	spec, err := jobspec.Parse([]byte(fmt.Sprintf("name: %s\ntable: %s\nkey: id\npending: status IS NULL\nset: status = 'x'\ntask_span: 100\n", job, orders)))
	require.NoError(t, err)
	c := control.New(rd.Client, rd.Prefix, ebbtest.Logger(t))
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.Start(ctx, db.Pool, spec, rd.Queue)
	require.NoError(t, err)
	s, err := c.Status(ctx, job)
	require.NoError(t, err)
	require.Equal(t, control.StateQueued, s.State)
	require.Empty(t, s.Lost, "a just-started job's tasks are all there")

	insp := asynq.NewInspectorFromRedisClient(rd.Client)
	require.NoError(t, insp.ArchiveTask(rd.Queue, rangetask.TaskID(job, 1)))
	require.NoError(t, insp.DeleteTask(rd.Queue, rangetask.TaskID(job, 2)))
	// Past the grace start gets to enqueue its ranges.
	l := ledger.New(rd.Client, rd.Prefix)
	require.NoError(t, rd.Client.HSet(ctx, l.MetaKey(job), "created", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)).Err())

	s, err = c.Status(ctx, job)
	require.NoError(t, err)
	require.Equal(t, []int64{2}, s.Lost)
	require.Equal(t, int64(1), s.RangesFailed)
	require.Len(t, s.Failures, 1)
	require.Equal(t, int64(1), s.Failures[0].Range)
	require.True(t, strings.HasPrefix(s.Failures[0].Reason, "archived by asynq"), s.Failures[0].Reason)
	require.Equal(t, control.StateQueued, s.State, "range 0 can still run")

	require.NoError(t, insp.DeleteTask(rd.Queue, rangetask.TaskID(job, 0)))
	s, err = c.Status(ctx, job)
	require.NoError(t, err)
	require.Equal(t, control.StateLost, s.State, "nothing left that can run")
	require.Equal(t, []int64{0, 2}, s.Lost)

	// start again re-enqueues what is not done: nothing is lost any more.
	_, err = c.Start(ctx, db.Pool, spec, rd.Queue)
	require.NoError(t, err)
	s, err = c.Status(ctx, job)
	require.NoError(t, err)
	require.Empty(t, s.Lost)
	require.Zero(t, s.RangesFailed)
	require.Equal(t, control.StateQueued, s.State)
}

// TestStatusSkipsReconcileWhileAlive: while workers commit (the alive
// mark), status does not read every open range's task from asynq on each
// poll; a deleted task shows as lost once the fleet goes quiet.
func TestStatusSkipsReconcileWhileAlive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, rd := ebbtest.Schema(t), ebbtest.Redis(t)
	orders := db.Table("orders")
	db.Exec(t, `CREATE TABLE `+orders+` (id bigint PRIMARY KEY, status text)`)
	db.Exec(t, `INSERT INTO `+orders+` SELECT g, NULL FROM generate_series(1, 200) g`)
	job := "job-" + ebbtest.Suffix()
	spec, err := jobspec.Parse([]byte(fmt.Sprintf("name: %s\ntable: %s\nkey: id\npending: status IS NULL\nset: status = 'x'\ntask_span: 100\n", job, orders)))
	require.NoError(t, err)
	c := control.New(rd.Client, rd.Prefix, ebbtest.Logger(t))
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.Start(ctx, db.Pool, spec, rd.Queue)
	require.NoError(t, err)
	l := ledger.New(rd.Client, rd.Prefix)
	require.NoError(t, rd.Client.HSet(ctx, l.MetaKey(job), "created", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)).Err())
	insp := asynq.NewInspectorFromRedisClient(rd.Client)
	t.Cleanup(func() { _ = insp.Close() })
	require.NoError(t, insp.DeleteTask(rd.Queue, rangetask.TaskID(job, 1)))

	require.NoError(t, l.Touch(ctx, job, time.Minute))
	s, err := c.Status(ctx, job)
	require.NoError(t, err)
	require.Empty(t, s.Lost, "not read while the fleet commits")

	require.NoError(t, rd.Client.Del(ctx, l.AliveKey(job)).Err())
	s, err = c.Status(ctx, job)
	require.NoError(t, err)
	require.Equal(t, []int64{1}, s.Lost)
}
