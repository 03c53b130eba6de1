package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/dial"
	"github.com/ebbhq/ebb/internal/jobspec"
)

const verifyHelp = `enqueuer verify JOB [--json] [--sample [--random N]] [--repair]

Proves a job finished correctly. It reads EVERY row of the job's ranges,
in key order along the key's index, in chunks of --chunk-rows rows (each
chunk its own short READ ONLY, REPEATABLE READ transaction, never one long
scan), paced like the job: no faster than its rate (or with its sleep
between chunks), and held while the job's guard says pause. It counts:
  - rows still matching the pending predicate;
  - rows failing the job's check: expression (false or NULL), e.g.
    check: status = map_status(legacy_state).
A row found wrong is read again in a new transaction: one that live
traffic fixed in between is reported as "changed during verify", not as a
failure. The report names every range holding wrong rows, with counts and
the first keys, compares the ledger with the database, is stored with the
job (ebb:{JOB}:verify), and verify exits 1 when anything is wrong.
Progress goes to stderr while it runs.

--sample is the quick look instead: the first, last and random rows of the
oldest, newest and N random ranges. It proves nothing about other rows.

--repair (the same as enqueuer repair JOB) then reopens every range holding
pending rows and enqueues it again; the fleet redoes it and a later verify
passes.

Flags:
`

const repairHelp = `enqueuer repair JOB [--json]

Runs a full verify (see enqueuer verify -h), then reopens every range
holding rows still pending: removes its done mark and cursor and enqueues
it again. The running fleet redoes those ranges through the normal path:
guard, rate, pause, short batches, and the pending predicate deciding
which rows are rewritten. Run enqueuer verify again once status shows the
job done. Rows that fail the check without matching the pending predicate
are listed and not reopened: the job's statement would not rewrite them.
Exit codes: 0 nothing to repair or ranges reopened, 1 verify found rows
repair cannot fix.

Flags:
`

func runVerify(ctx context.Context, e *env, args []string) error {
	fs := newFlags("verify", verifyHelp, e)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	sample := fs.Bool("sample", false, "spot-check sampled rows only (quick, proves nothing about the others)")
	random := fs.Int("random", 5, "with --sample: random ranges to spot-check besides the oldest and newest")
	chunk := fs.Int("chunk-rows", 0, "rows per chunk of the full walk (default: the job's read_batch)")
	repair := fs.Bool("repair", false, "reopen and enqueue again every range holding pending rows (as enqueuer repair)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return bad("verify takes exactly one JOB, got %v", pos)
	}
	if *repair && *sample {
		return bad("--repair needs the full walk: drop --sample")
	}
	opt := control.VerifyOptions{Sample: *sample, Random: *random, ChunkRows: *chunk}
	if *repair {
		return repairJob(ctx, e, pos[0], opt, *asJSON)
	}
	return withJobPool(ctx, e, pos[0], func(c *control.Control, pool *pgxpool.Pool) error {
		opt.ProgressFunc = verifyProgress(e.stderr)
		r, err := c.Verify(ctx, pool, pos[0], opt)
		if r == nil {
			return err
		}
		if perr := printReport(e, r, *asJSON); perr != nil {
			return perr
		}
		if errors.Is(err, control.ErrVerifyFailed) {
			return verifyFailed{err}
		}
		return err
	})
}

func runRepair(ctx context.Context, e *env, args []string) error {
	fs := newFlags("repair", repairHelp, e)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	chunk := fs.Int("chunk-rows", 0, "rows per chunk of the verify walk (default: the job's read_batch)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return bad("repair takes exactly one JOB, got %v", pos)
	}
	return repairJob(ctx, e, pos[0], control.VerifyOptions{ChunkRows: *chunk}, *asJSON)
}

func repairJob(ctx context.Context, e *env, job string, opt control.VerifyOptions, asJSON bool) error {
	return withJobPool(ctx, e, job, func(c *control.Control, pool *pgxpool.Pool) error {
		opt.ProgressFunc = verifyProgress(e.stderr)
		res, err := c.Repair(ctx, pool, job, opt)
		if res == nil || res.Report == nil {
			return err
		}
		if asJSON {
			if jerr := json.NewEncoder(e.stdout).Encode(res); jerr != nil {
				return jerr
			}
		} else {
			printVerify(e, res.Report)
			printRepair(e, job, res)
		}
		if errors.Is(err, control.ErrNotRepairable) {
			return verifyFailed{err}
		}
		return err
	})
}

// withJobPool connects to Redis and to the database of job's stored spec.
func withJobPool(ctx context.Context, e *env, job string, fn func(*control.Control, *pgxpool.Pool) error) error {
	c, closeFn, err := connect(ctx, e)
	if err != nil {
		return err
	}
	defer closeFn()
	// The stored spec names the database; the status call turns an
	// unknown job into a clear error first.
	if _, err := c.Status(ctx, job); err != nil {
		return err
	}
	raw, err := c.Ledger().Spec(ctx, job)
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
	return fn(c, pool)
}

// verifyFailed exits 1 without repeating the report on stderr.
type verifyFailed struct{ error }

// verifyProgress writes a line to w at most every two seconds while a
// walk runs, and whenever the guard holds it: a walk of a big table takes
// minutes, and silence would look like a hang.
func verifyProgress(w io.Writer) func(control.VerifyProgress) {
	var mu sync.Mutex
	var last time.Time
	var held string
	return func(p control.VerifyProgress) {
		mu.Lock()
		defer mu.Unlock()
		if p.Held != "" {
			if p.Held != held {
				fmt.Fprintf(w, "verify: held by the guard: %s\n", p.Held)
			}
			held = p.Held
			return
		}
		held = ""
		if time.Since(last) < 2*time.Second && p.RangesDone < p.Ranges {
			return
		}
		last = time.Now()
		fmt.Fprintf(w, "verify: %d/%d ranges, %d rows read, %d wrong so far\n", p.RangesDone, p.Ranges, p.Rows, p.Wrong)
	}
}

func printReport(e *env, r *control.VerifyReport, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(r)
	}
	printVerify(e, r)
	return nil
}

// findingsShown caps the ranges the text report lists; --json has all.
const findingsShown = 20

func printVerify(e *env, r *control.VerifyReport) {
	w := e.stdout
	verdict := "OK"
	if !r.OK {
		verdict = "PROBLEMS FOUND"
	}
	fmt.Fprintf(w, "verify %s on %s: %s (%s)\n", r.Job, r.Table, verdict, r.Elapsed)
	fmt.Fprintf(w, "  ranges:  %d/%d done, %d failed\n", r.RangesDone, r.RangesTotal, r.RangesFailed)
	fmt.Fprintf(w, "  rows:    %d written by the workers (planner estimated %d pending at start)\n", r.LedgerRows, r.EstimatedRows)
	if r.Sample {
		fmt.Fprintf(w, "  sample:  %d sampled rows tested (a spot check: other rows were not read), %d pending or failing\n", r.Sampled, len(r.Mismatches))
	} else {
		fmt.Fprintf(w, "  read:    every row: %d rows in %d chunks\n", r.Rows, r.Chunks)
		switch {
		case r.CopyTo != "":
			fmt.Fprintf(w, "  copy:    compared with %s by count and checksum per chunk: %d rows missing, %d different, %d without a source row\n", r.CopyTo, r.Missing, r.Differing, r.Extra)
		case r.Kind == jobspec.KindDelete:
			fmt.Fprintf(w, "  pending: %d rows still match pending (left to delete)\n", r.Pending)
		case r.Check == "":
			fmt.Fprintf(w, "  pending: %d rows still pending\n", r.Pending)
			fmt.Fprintln(w, "  check:   none (add check: EXPR to the job file to test every row's value)")
		default:
			fmt.Fprintf(w, "  pending: %d rows still pending\n", r.Pending)
			fmt.Fprintf(w, "  check:   %d rows fail %q\n", r.Failing, r.Check)
		}
		if r.Changed > 0 {
			fmt.Fprintf(w, "  changed: %d rows were wrong, then right when read again: changed during verify by live traffic (first keys %v)\n", r.Changed, r.ChangedKeys)
		}
	}
	for i, f := range r.Findings {
		if i == findingsShown {
			fmt.Fprintf(w, "  ... %d more ranges (--json lists them all)\n", len(r.Findings)-i)
			break
		}
		if r.CopyTo != "" {
			fmt.Fprintf(w, "  range %s: %d missing, %d different, %d without a source row; keys %v\n", f.Range, f.Missing, f.Differing, f.Extra, f.Keys)
			continue
		}
		fmt.Fprintf(w, "  range %s: %d pending, %d failing the check; keys %v\n", f.Range, f.Pending, f.Failing, f.Keys)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  problem: %s\n", p)
	}
}

func printRepair(e *env, job string, res *control.RepairResult) {
	w := e.stdout
	switch {
	case res.Report.OK:
		fmt.Fprintf(w, "repair %s: nothing to repair\n", job)
		return
	case len(res.Reopened) > 0:
		fmt.Fprintf(w, "repair %s: reopened and enqueued ranges %v; the fleet redoes them (enqueuer status %s), then run enqueuer verify %s\n", job, res.Reopened, job, job)
	}
	if len(res.Unrepairable) > 0 {
		fmt.Fprintf(w, "repair %s: ranges %v not reopened: redoing them would change nothing\n", job, res.Unrepairable)
	}
	if res.Why != "" {
		fmt.Fprintf(w, "repair %s: %s\n", job, res.Why)
	}
}
