package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/dial"
	"github.com/ebbhq/ebb/internal/jobspec"
)

const verifyHelp = `enqueuer verify JOB [--json] [--random N]

Proves a job finished correctly, without one long scan:
  - counts rows still matching the pending predicate, in key-range chunks
    read no faster than the job's rate (or with its sleep between chunks);
  - compares the ledger (ranges done/failed, rows written) with the database;
  - spot-checks sampled rows against the job's check: expression (e.g.
    check: status = map_status(legacy_state)): the first and last keys and
    random keys of the oldest, newest and N random ranges.
Prints a report, stores it with the job (ebb:{JOB}:verify) and exits 1 when
anything is wrong. Read-only: every query runs in a READ ONLY transaction.

Flags:
`

func runVerify(ctx context.Context, e *env, args []string) error {
	fs := newFlags("verify", verifyHelp, e)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	random := fs.Int("random", 5, "random ranges to spot-check besides the oldest and newest")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return bad("verify takes exactly one JOB, got %v", pos)
	}
	c, closeFn, err := connect(ctx, e)
	if err != nil {
		return err
	}
	defer closeFn()
	// The stored spec names the database; the status call below turns an
	// unknown job into a clear error first.
	if _, err := c.Status(ctx, pos[0]); err != nil {
		return err
	}
	raw, err := c.Ledger().Spec(ctx, pos[0])
	if err != nil {
		return err
	}
	spec, err := jobspec.FromJSON(raw)
	if err != nil {
		return err
	}
	pool, err := dial.PostgresDSN(ctx, spec.DatabaseEnv, e.getenv(spec.DatabaseEnv))
	if err != nil {
		return err
	}
	defer pool.Close()
	r, err := c.Verify(ctx, pool, pos[0], control.VerifyOptions{Random: *random})
	if r == nil {
		return err
	}
	if *asJSON {
		if jerr := json.NewEncoder(e.stdout).Encode(r); jerr != nil {
			return jerr
		}
	} else {
		printVerify(e, r)
	}
	if errors.Is(err, control.ErrVerifyFailed) {
		return verifyFailed{err}
	}
	return err
}

// verifyFailed exits 1 without repeating the report on stderr.
type verifyFailed struct{ error }

func printVerify(e *env, r *control.VerifyReport) {
	w := e.stdout
	verdict := "OK"
	if !r.OK {
		verdict = "PROBLEMS FOUND"
	}
	fmt.Fprintf(w, "verify %s on %s: %s (%s)\n", r.Job, r.Table, verdict, r.Elapsed)
	fmt.Fprintf(w, "  ranges:  %d/%d done, %d failed\n", r.RangesDone, r.RangesTotal, r.RangesFailed)
	fmt.Fprintf(w, "  rows:    %d written by the workers (planner estimated %d pending at start)\n", r.LedgerRows, r.EstimatedRows)
	fmt.Fprintf(w, "  pending: %d rows still pending, counted in %d chunks\n", r.Pending, r.Chunks)
	if r.Check == "" {
		fmt.Fprintln(w, "  check:   none (add check: EXPR to the job file to spot-check values)")
	} else {
		fmt.Fprintf(w, "  check:   %d sampled rows tested with %q, %d failed\n", r.Sampled, r.Check, len(r.Mismatches))
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  problem: %s\n", p)
	}
}
