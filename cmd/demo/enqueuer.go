package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/ebbhq/ebb/internal/child"
)

const (
	// toolTimeout bounds a hung enqueuer command; plan, start, pause and
	// resume take seconds.
	toolTimeout = 2 * time.Minute
	// statusTimeout bounds one status poll, which the demo repeats every
	// second.
	statusTimeout = 15 * time.Second
	// cleanupTimeout covers enqueuer cleanup --force, which waits up to 30 s
	// for a killed worker's ranges to hand themselves back.
	cleanupTimeout = 90 * time.Second
)

// enqueuer runs bin/enqueuer commands with the environment the workers get.
// Commands an operator would type are shown with their output, so the
// demo's transcript reads like the operator's terminal.
type enqueuer struct {
	bin string
	env []string
	out io.Writer
}

// show runs one command, printing "$ enqueuer ARGS" and what it printed.
func (e *enqueuer) show(ctx context.Context, timeout time.Duration, args ...string) error {
	fmt.Fprintf(e.out, "\n$ %s %s\n", filepath.Base(e.bin), strings.Join(args, " "))
	out, err := child.Run(ctx, timeout, e.bin, args, e.env)
	fmt.Fprint(e.out, indent(string(out), "  "))
	return err
}

// status runs `enqueuer status JOB --json` without showing it and decodes
// the part the demo reads.
func (e *enqueuer) status(ctx context.Context, job string) (jobStatus, error) {
	out, err := child.Run(ctx, statusTimeout, e.bin, []string{"status", job, "--json"}, e.env)
	if err != nil {
		return jobStatus{}, err
	}
	return parseStatus(out)
}

// verifyTimeout bounds enqueuer verify, which reads every row in chunks
// paced at the job's rate: for the demo's table that alone takes rows/rate,
// so the bound grows with -rows.
func verifyTimeout(rows int64) time.Duration {
	return toolTimeout + 2*time.Duration(float64(rows)/jobRate*float64(time.Second))
}

// cleanup stops the workers, then removes the job with enqueuer cleanup and
// its queue with asynq's Inspector. The workers go first because a worker
// still running could recreate a key behind the cleanup. It is detached from
// ctx: after Ctrl-C the cleanup is exactly what must still happen.
func (d *demo) cleanup(ctx context.Context, r *jobRun, f *fleet, finished bool) error {
	f.stop(d.cfg.stopGrace, d.log)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	args := []string{"cleanup", r.job}
	if !finished {
		// The workers are gone, but a job stopped midway still reads
		// running, and a plain cleanup refuses a running job.
		args = append(args, "--force")
	}
	if err := r.enq.show(cctx, cleanupTimeout, args...); err != nil {
		return fmt.Errorf("clean up job %s: %w", r.job, err)
	}
	if err := deleteQueue(r.redisURL, r.queue); err != nil {
		return err
	}
	d.printf("removed the empty asynq queue %s\n", r.queue)
	return nil
}

// deleteQueue removes the run's queue once enqueuer cleanup has emptied it,
// so asynq (and Asynqmon) stop listing it. The queue is the demo's own, one
// per run, which is why the demo and not enqueuer cleanup removes it. It
// refuses a queue that still holds tasks; a queue asynq never saw is fine.
func deleteQueue(redisURL, queue string) error {
	opt, err := asynq.ParseRedisURI(redisURL)
	if err != nil {
		return fmt.Errorf("delete queue %s: parse REDIS_URL: %w", queue, err)
	}
	in := asynq.NewInspector(opt)
	defer in.Close()
	if err := in.DeleteQueue(queue, false); err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		return fmt.Errorf("delete queue %s: %w", queue, err)
	}
	return nil
}
