package main

import (
	"context"
	"encoding/json"
	"fmt"
)

const cleanupHelp = `enqueuer cleanup JOB [--force] [--json]

Removes every trace of a job from Redis: its progress, overrides, pause flag,
guard state and its tasks in asynq (pending, scheduled, retry, archived,
completed). It refuses while the job runs; pause it first, or pass --force
(which pauses the job, waits up to 30 s for running ranges to hand
themselves back, then removes them). The database is not touched. Prints one
final summary line.

Flags:
`

func runCleanup(ctx context.Context, e *env, args []string) error {
	fs := newFlags("cleanup", cleanupHelp, e)
	force := fs.Bool("force", false, "clean up even while the job runs")
	asJSON := fs.Bool("json", false, "print one JSON object")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return bad("cleanup takes exactly one JOB, got %v", pos)
	}
	c, closeFn, err := connect(ctx, e)
	if err != nil {
		return err
	}
	defer closeFn()
	res, err := c.Cleanup(ctx, pos[0], *force)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(res)
	}
	fmt.Fprintln(e.stdout, res.Summary())
	return nil
}
