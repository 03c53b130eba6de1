package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/ebbhq/ebb/internal/control"
)

const statusHelp = `enqueuer status [JOB] [--json]

Shows a job's state (queued, running, paused, done, failed), ranges
total/done/failed, rows written, and why any range failed. Without JOB it
lists every job.

Flags:
`

func runStatus(ctx context.Context, e *env, args []string) error {
	fs := newFlags("status", statusHelp, e)
	asJSON := fs.Bool("json", false, "print JSON (one object for a job, an array for the list)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return bad("status takes at most one JOB, got %v", pos)
	}
	c, closeFn, err := connect(ctx, e)
	if err != nil {
		return err
	}
	defer closeFn()
	if len(pos) == 0 {
		return listJobs(ctx, e, c, *asJSON)
	}
	s, err := c.Status(ctx, pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(s)
	}
	w := e.stdout
	fmt.Fprintf(w, "job %s: %s\n", s.Job, s.State)
	fmt.Fprintf(w, "  ranges: %d/%d done, %d failed\n", s.RangesDone, s.RangesTotal, s.RangesFailed)
	fmt.Fprintf(w, "  rows:   %d written in %d batches\n", s.RowsDone, s.Batches)
	if s.PauseReason != "" {
		fmt.Fprintf(w, "  paused: %s\n", s.PauseReason)
	}
	for _, f := range s.Failures {
		fmt.Fprintf(w, "  range %d failed: %s\n", f.Range, f.Reason)
	}
	if s.RangesFailed > 0 {
		fmt.Fprintf(w, "  fix the cause, then run enqueuer start -job FILE again to retry failed ranges\n")
	}
	return nil
}

func listJobs(ctx context.Context, e *env, c *control.Control, asJSON bool) error {
	jobs, err := c.Jobs(ctx)
	if err != nil {
		return err
	}
	sort.Strings(jobs)
	var all []*control.Status
	for _, j := range jobs {
		s, err := c.Status(ctx, j)
		if err != nil {
			continue // a job whose ledger was removed by hand
		}
		all = append(all, s)
	}
	if asJSON {
		if all == nil {
			all = []*control.Status{}
		}
		return json.NewEncoder(e.stdout).Encode(all)
	}
	if len(all) == 0 {
		fmt.Fprintln(e.stdout, "no jobs; start one with enqueuer start -job FILE")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tSTATE\tRANGES\tFAILED\tROWS")
	for _, s := range all {
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%d\t%d\n", s.Job, s.State, s.RangesDone, s.RangesTotal, s.RangesFailed, s.RowsDone)
	}
	return tw.Flush()
}
