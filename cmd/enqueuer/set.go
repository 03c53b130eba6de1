package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ebbhq/ebb/internal/control"
)

const setHelp = `enqueuer set JOB [--rate N] [--max-workers N] [--batch-max N] [--sleep D] [--clear]

Changes a running job's limits without a restart; workers apply them before
their next batch (within seconds). Stored in the hash ebb:{JOB}:overrides
(fields rate, max_workers, batch_max, sleep), so redis-cli works too:
  redis-cli HSET 'ebb:{JOB}:overrides' rate 500
--clear drops every override first: the job file's limits apply again.
0 means unlimited for --rate, --max-workers and --batch-max.

Flags:
`

func runSet(ctx context.Context, e *env, args []string) error {
	fs := newFlags("set", setHelp, e)
	var o control.OverrideFlags
	fs.Func("rate", "rows per second for the whole fleet (0 = unlimited)", floatFlag(&o.Rate))
	fs.Func("max-workers", "batches in flight across the fleet (0 = unlimited)", intFlag(&o.MaxWorkers))
	fs.Func("batch-max", "largest batch any worker may cut (0 = the job file's)", intFlag(&o.BatchMax))
	fs.Func("sleep", "pause between a worker's batches, e.g. 200ms", durationFlag(&o.Sleep))
	clear := fs.Bool("clear", false, "drop every override (then apply any others given)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return bad("set takes exactly one JOB, got %v", pos)
	}
	if !*clear && o == (control.OverrideFlags{}) {
		return bad("nothing to set: give --rate, --max-workers, --batch-max, --sleep or --clear")
	}
	c, closeFn, err := connect(ctx, e)
	if err != nil {
		return err
	}
	defer closeFn()
	fields, err := c.SetOverrides(ctx, pos[0], operator(e), o, *clear)
	if errors.Is(err, control.ErrBadOverride) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	if *clear {
		fmt.Fprintf(e.stdout, "job %s: overrides cleared\n", pos[0])
	}
	for _, k := range []string{"rate", "max_workers", "batch_max", "sleep"} {
		if v, ok := fields[k]; ok {
			fmt.Fprintf(e.stdout, "job %s: %s = %s\n", pos[0], k, v)
		}
	}
	return nil
}

func floatFlag(dst **float64) func(string) error {
	return func(s string) error {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		*dst = &v
		return nil
	}
}

func intFlag(dst **int) func(string) error {
	return func(s string) error {
		v, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		*dst = &v
		return nil
	}
}

func durationFlag(dst **time.Duration) func(string) error {
	return func(s string) error {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration; write it like 200ms or 1s", s)
		}
		*dst = &v
		return nil
	}
}
