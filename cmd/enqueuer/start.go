package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ebbhq/ebb/internal/dial"
	"github.com/ebbhq/ebb/internal/rangetask"
)

const startHelp = `enqueuer start -job FILE [-queue Q] [--json]

Runs the preflight checks, stores the job in Redis, slices its key range into
ranges of task_span keys and enqueues one task per range. Running it again is
safe: ranges that are done or already queued are skipped, failed ranges are
enqueued again, and after Redis lost its data it rebuilds the queue.

Flags:
`

func runStart(ctx context.Context, e *env, args []string) error {
	fs := newFlags("start", startHelp, e)
	jobFile := fs.String("job", "", "job file (YAML)")
	queue := fs.String("queue", rangetask.DefaultQueue, "asynq queue the workers serve")
	asJSON := fs.Bool("json", false, "print one JSON object")
	dryRun := fs.Bool("dry-run", false, "roll every batch back: exercise reads, timings and the guard without changing a row (same as dry_run: true)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	spec, err := loadJob(*jobFile)
	if err != nil {
		return err
	}
	if *dryRun {
		spec.DryRun = true
	}
	pool, err := dial.PostgresDSN(ctx, spec.DatabaseEnv, e.getenv(spec.DatabaseEnv))
	if err != nil {
		return err
	}
	defer pool.Close()
	c, closeFn, err := connect(ctx, e)
	if err != nil {
		return err
	}
	defer closeFn()
	res, err := c.Start(ctx, pool, spec, *queue)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(res)
	}
	w := e.stdout
	fmt.Fprintf(w, "job %s: %d ranges over [%s, %s] on queue %s\n", res.Job, res.Ranges, res.From, res.To, res.Queue)
	if spec.DryRun {
		fmt.Fprintln(w, "  dry run: every batch rolls back; no row changes. Clean it up (enqueuer cleanup) before the real run.")
	}
	if res.KeptSlicing {
		fmt.Fprintln(w, "  note: the job was started before with another range or task_span; its stored slicing is kept so finished ranges stay finished")
	}
	fmt.Fprintf(w, "  enqueued %d, already queued %d, already done %d, re-enqueued after failure %d\n",
		res.Enqueued, res.AlreadyQueued, res.AlreadyDone, res.Requeued)
	for _, warn := range res.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
	if len(res.SpecChanged) > 0 {
		fmt.Fprintf(w, "  the job file changed since the last start (%s): the new spec is stored; each range uses it from its next start (a range running now finishes its current run on the old one)\n",
			strings.Join(res.SpecChanged, ", "))
	}
	if res.Enqueued == 0 && res.Requeued == 0 {
		if len(res.SpecChanged) > 0 {
			fmt.Fprintln(w, "  no range was enqueued: every range is already queued or done")
		} else {
			fmt.Fprintln(w, "  nothing new was enqueued and the spec is unchanged")
		}
	}
	fmt.Fprintf(w, "watch it with: enqueuer status %s\n", res.Job)
	return nil
}
