package control

import (
	"context"
	"fmt"
	"time"

	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/rangetask"
)

// queueView is what asynq holds of a job's unfinished ranges, as status
// shows it: a range whose task asynq archived never runs again unless
// someone acts, and neither does one whose task is gone (deleted in
// Asynqmon, lost with Redis's data), while the ledger alone would show
// both as merely queued.
type queueView struct {
	// archived are ranges whose task asynq archived, with its last error.
	archived []ledger.Failure
	// lost are ranges asynq holds no runnable task for.
	lost []int64
}

// lostGrace is how long after a job's start a missing task is not yet
// called lost: start stores the job, then enqueues its ranges one by one.
const lostGrace = 30 * time.Second

// reconcile compares the ranges the ledger has neither done nor failed
// with asynq's tasks for them. It costs a read per open range (50,000 for
// the largest job), and status runs on every poll of the on-call page, so
// it runs only while no worker has committed a batch of the job recently
// (the ledger's alive mark): that is when a job with ranges nobody will
// run would otherwise look merely queued. While the fleet writes, asynq's
// own asynq_tasks_enqueued_total{state="archived"} shows an archived task.
func (c *Control) reconcile(ctx context.Context, job string, snap ledger.Snapshot, now time.Time) (queueView, error) {
	var v queueView
	m := snap.Meta
	if snap.RangesDone >= m.Ranges || m.Queue == "" || snap.Alive {
		return v, nil
	}
	done, err := c.ledger.DoneRanges(ctx, job)
	if err != nil {
		return v, err
	}
	failed := make(map[int64]bool, len(snap.Failed))
	for _, f := range snap.Failed {
		failed[f.Range] = true
	}
	var ids []string
	for r := int64(0); r < m.Ranges; r++ {
		if !done[r] && !failed[r] {
			ids = append(ids, rangetask.TaskID(job, r))
		}
	}
	states, err := c.ledger.TaskStates(ctx, m.Queue, ids)
	if err != nil {
		return v, err
	}
	young := now.Sub(m.Created) < lostGrace
	for _, id := range ids {
		_, r, err := rangetask.ParseTaskID(id)
		if err != nil {
			continue
		}
		switch states[id] {
		case "archived":
			reason := "archived by asynq"
			if info, err := c.inspector.GetTaskInfo(m.Queue, id); err == nil && info.LastErr != "" {
				reason = fmt.Sprintf("archived by asynq after %d attempts: %s", info.Retried, info.LastErr)
			}
			v.archived = append(v.archived, ledger.Failure{Range: r, Reason: reason + "; run enqueuer start -job FILE again to re-enqueue it"})
		case "", "completed":
			// A completed task whose range is not done handed it back
			// without finishing it; either way nothing will run it.
			if !young {
				v.lost = append(v.lost, r)
			}
		}
	}
	if len(v.lost) > 0 {
		// A range may have finished between the two reads.
		if done, err = c.ledger.DoneRanges(ctx, job); err != nil {
			return v, err
		}
		kept := v.lost[:0]
		for _, r := range v.lost {
			if !done[r] {
				kept = append(kept, r)
			}
		}
		v.lost = kept
	}
	return v, nil
}
