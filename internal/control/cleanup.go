package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/ebbhq/ebb/internal/clock"
	"github.com/ebbhq/ebb/internal/pause"
	"github.com/ebbhq/ebb/internal/rangetask"
)

// ErrJobActive means a command refuses to touch a job that is running.
var ErrJobActive = errors.New("job is running")

// CleanupResult is what cleanup removed, and the job's last state.
type CleanupResult struct {
	Job          string `json:"job"`
	State        string `json:"state"`
	RowsDone     int64  `json:"rows_done"`
	Batches      int64  `json:"batches"`
	RangesDone   int64  `json:"ranges_done"`
	RangesTotal  int64  `json:"ranges_total"`
	KeysRemoved  int64  `json:"keys_removed"`
	TasksRemoved int    `json:"tasks_removed"`
	// TasksLeft are tasks asynq would not delete (still active after the
	// drain wait); they end on their own, finding no spec.
	TasksLeft int `json:"tasks_left,omitempty"`
}

// Summary is the one line cleanup leaves behind.
func (r *CleanupResult) Summary() string {
	s := fmt.Sprintf("job %s cleaned up: was %s, %d rows in %d batches, %d/%d ranges done; removed %d Redis keys and %d tasks",
		r.Job, r.State, r.RowsDone, r.Batches, r.RangesDone, r.RangesTotal, r.KeysRemoved, r.TasksRemoved)
	if r.TasksLeft > 0 {
		s += fmt.Sprintf("; %d active tasks could not be removed (they stop at their next batch)", r.TasksLeft)
	}
	return s
}

// drainWait bounds how long a forced cleanup waits for the job's running
// ranges to hand themselves back after it pauses the job.
const drainWait = 30 * time.Second

// Cleanup removes every trace of job: its ledger keys (progress, overrides,
// pause flag, guard state) and its tasks in asynq. It refuses while the job
// runs unless force. A paused job, or a forced cleanup, first has its pause
// flag set so ranges still active hand themselves back between batches
// (up to drainWait), then removes them.
func (c *Control) Cleanup(ctx context.Context, job string, force bool) (*CleanupResult, error) {
	st, err := c.Status(ctx, job)
	if err != nil {
		return nil, err
	}
	res := &CleanupResult{Job: job, State: st.State, RowsDone: st.RowsDone, Batches: st.Batches,
		RangesDone: st.RangesDone, RangesTotal: st.RangesTotal}
	active, err := c.jobTasks(st.Queue, job, []asynq.TaskState{asynq.TaskStateActive})
	if err != nil {
		return nil, err
	}
	if st.State == StateRunning && !force {
		return nil, fmt.Errorf("%w: %s has %d ranges active; pause it (enqueuer pause %s) and run cleanup again, which waits for the batches in flight, or clean up with --force",
			ErrJobActive, job, len(active), job)
	}
	if len(active) > 0 {
		// Status says paused the moment a switch is set, while batches in
		// flight still commit; and a guard pause may lift any second. The
		// job's own flag holds every range until the keys are gone.
		if err := c.ledger.SetPause(ctx, job, pause.FlagValue("enqueuer cleanup", time.Now())); err != nil {
			return nil, err
		}
		began := time.Now()
		deadline := began.Add(drainWait)
		for len(active) > 0 && time.Now().Before(deadline) {
			if err := clock.Sleep(ctx, 500*time.Millisecond); err != nil {
				return nil, err
			}
			if active, err = c.jobTasks(st.Queue, job, []asynq.TaskState{asynq.TaskStateActive}); err != nil {
				return nil, err
			}
			// A worker holds a paused job's ranges in place between
			// batches instead of handing them back: once the batches in
			// flight had a second to land, cancel what is still active
			// (between batches, or a batch's transaction rolls back).
			if time.Since(began) >= time.Second {
				for _, t := range active {
					_ = c.inspector.CancelProcessing(t.ID)
				}
			}
		}
		for _, t := range active {
			_ = c.inspector.CancelProcessing(t.ID)
		}
		res.TasksLeft = len(active)
	}
	rest, err := c.jobTasks(st.Queue, job, []asynq.TaskState{asynq.TaskStatePending, asynq.TaskStateScheduled,
		asynq.TaskStateRetry, asynq.TaskStateArchived, asynq.TaskStateCompleted})
	if err != nil {
		return nil, err
	}
	for _, t := range rest {
		if err := c.inspector.DeleteTask(st.Queue, t.ID); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
			return nil, fmt.Errorf("delete task %s: %w", t.ID, err)
		}
		res.TasksRemoved++
	}
	if res.KeysRemoved, err = c.ledger.DeleteJob(ctx, job); err != nil {
		return nil, err
	}
	c.log.InfoContext(ctx, "job cleaned up", "job", job, "keys", res.KeysRemoved, "tasks", res.TasksRemoved)
	return res, nil
}

// jobTasks lists the job's range tasks in the given states of queue.
func (c *Control) jobTasks(queue, job string, states []asynq.TaskState) ([]*asynq.TaskInfo, error) {
	var out []*asynq.TaskInfo
	for _, state := range states {
		for page := 1; ; page++ {
			var tasks []*asynq.TaskInfo
			var err error
			opts := []asynq.ListOption{asynq.PageSize(500), asynq.Page(page)}
			switch state {
			case asynq.TaskStateActive:
				tasks, err = c.inspector.ListActiveTasks(queue, opts...)
			case asynq.TaskStatePending:
				tasks, err = c.inspector.ListPendingTasks(queue, opts...)
			case asynq.TaskStateScheduled:
				tasks, err = c.inspector.ListScheduledTasks(queue, opts...)
			case asynq.TaskStateRetry:
				tasks, err = c.inspector.ListRetryTasks(queue, opts...)
			case asynq.TaskStateArchived:
				tasks, err = c.inspector.ListArchivedTasks(queue, opts...)
			case asynq.TaskStateCompleted:
				tasks, err = c.inspector.ListCompletedTasks(queue, opts...)
			}
			if errors.Is(err, asynq.ErrQueueNotFound) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("list %s tasks of queue %s: %w", state, queue, err)
			}
			for _, t := range tasks {
				if j, _, err := rangetask.ParseTaskID(t.ID); err == nil && j == job {
					out = append(out, t)
				}
			}
			if len(tasks) < 500 {
				break
			}
		}
	}
	return out, nil
}
