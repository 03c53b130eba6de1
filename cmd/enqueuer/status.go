package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/guard"
)

const statusHelp = `enqueuer status [JOB] [--json | --watch [--interval 2s] | --history N]

Shows a job's state (queued, running, paused, done, failed), ranges
total/done/failed, rows written, why any range failed, the limits in force
(job file or enqueuer set), and the guard: its decision, reasons, leader,
and every rule's signal against its limits. Without JOB it lists every job.
--history N prints the job's last N guard changes (state or rate factor),
newest first, each with the reasons and every signal's value at the time.

Flags:
`

func runStatus(ctx context.Context, e *env, args []string) error {
	fs := newFlags("status", statusHelp, e)
	asJSON := fs.Bool("json", false, "print JSON (one object for a job, an array for the list)")
	watchJob := fs.Bool("watch", false, "follow the job until it is done: progress bars on a terminal, a line per poll elsewhere")
	every := fs.Duration("interval", 2*time.Second, "how often --watch polls")
	history := fs.Int("history", 0, "print the job's last N guard changes (state or rate), newest first; -1 for all kept")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return bad("status takes at most one JOB, got %v", pos)
	}
	if *watchJob && *asJSON {
		// --watch draws bars or plain lines; silently dropping --json
		// would hand a script text it cannot parse.
		return bad("--watch and --json do not mix; poll status JOB --json instead for machine-readable output")
	}
	c, closeFn, err := connect(ctx, e)
	if err != nil {
		return err
	}
	defer closeFn()
	if len(pos) == 0 {
		if *watchJob {
			return bad("--watch follows one JOB")
		}
		return listJobs(ctx, e, c, *asJSON)
	}
	if *history != 0 {
		if len(pos) == 0 || *watchJob {
			return bad("--history prints the guard changes of one JOB, without --watch")
		}
		return printHistory(ctx, e, c, pos[0], *history, *asJSON)
	}
	if *watchJob {
		if *every <= 0 {
			return bad("--interval must be positive")
		}
		return watch(ctx, e, c, pos[0], *every)
	}
	s, err := c.Status(ctx, pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(s)
	}
	printStatus(e.stdout, s)
	return nil
}

// printStatus prints one job's status as status JOB shows it.
func printStatus(w io.Writer, s *control.Status) {
	fmt.Fprintf(w, "job %s: %s\n", s.Job, s.State)
	if s.DryRun {
		fmt.Fprintln(w, "  dry run: batches roll back, no row changes; rows counts what a real run would write")
	}
	fmt.Fprintf(w, "  ranges: %d/%d done, %d failed\n", s.RangesDone, s.RangesTotal, s.RangesFailed)
	basis := fmt.Sprintf("%.1f%% of about %d pending at start", 100*s.Progress, s.EstimatedRows)
	if s.ProgressBasis == control.BasisRanges && s.State != control.StateDone {
		basis = fmt.Sprintf("%.1f%% by ranges done; the estimate of %d pending rows was too low", 100*s.Progress, s.EstimatedRows)
		if s.EstimatedRows == 0 {
			basis = fmt.Sprintf("%.1f%% by ranges done; no row estimate", 100*s.Progress)
		}
	}
	fmt.Fprintf(w, "  rows:   %d written in %d batches, %d retries (%s)\n", s.RowsDone, s.Batches, s.Retries, basis)
	pace := fmt.Sprintf("%.0f rows/s average", s.AvgRowsPerSec)
	if s.ETASeconds >= 0 && s.State != control.StateDone {
		pace += fmt.Sprintf(", ETA %s", (time.Duration(s.ETASeconds) * time.Second).Round(time.Second))
	}
	if s.ExpectedRows > 0 {
		pace += fmt.Sprintf(", %d%% of the pace the rate allows", 100*s.RowsDone/max(s.ExpectedRows, 1))
	}
	fmt.Fprintf(w, "  pace:   %s\n", pace)
	if s.PauseReason != "" {
		fmt.Fprintf(w, "  paused: %s\n", s.PauseReason)
	}
	printLimits(w, s)
	printGuard(w, s.Guard)
	if o := s.GuardOverride; o != nil {
		fmt.Fprintf(w, "  guard overridden by %s until %s: workers ignore its decisions (enqueuer resume %s --end-override ends it)\n",
			o.By, o.Until.Format(time.RFC3339), s.Job)
	}
	for _, f := range s.Failures {
		fmt.Fprintf(w, "  range %d failed: %s\n", f.Range, f.Reason)
	}
	for i, a := range s.Audit {
		if i == 3 {
			fmt.Fprintf(w, "  …and %d earlier actions (--json shows %d)\n", len(s.Audit)-i, len(s.Audit))
			break
		}
		fmt.Fprintf(w, "  %s %s by %s", a.At.Format(time.RFC3339), a.Action, a.Who)
		if a.Detail != "" {
			fmt.Fprintf(w, ": %s", a.Detail)
		}
		fmt.Fprintln(w)
	}
	if len(s.Lost) > 0 {
		fmt.Fprintf(w, "  lost:   ranges %v have no task in asynq (deleted, or lost with Redis's data): nothing will run them; run enqueuer start -job FILE again\n", s.Lost)
	}
	if s.RangesFailed > 0 {
		fmt.Fprintf(w, "  fix the cause, then run enqueuer start -job FILE again to retry failed ranges\n")
	}
}

func printLimits(w io.Writer, s *control.Status) {
	rate := "unlimited"
	if s.Rate > 0 {
		rate = strconv.FormatFloat(s.Rate, 'g', -1, 64) + " rows/s"
	}
	workers := "unlimited"
	if s.MaxWorkers > 0 {
		workers = strconv.Itoa(s.MaxWorkers)
	}
	if a := s.Auto; a != nil {
		rate = fmt.Sprintf("auto, now %s rows/s", fmtNum(a.Rate))
		if a.RateMax > 0 {
			rate += fmt.Sprintf(" (rate_max %s)", fmtNum(a.RateMax))
		}
	}
	fmt.Fprintf(w, "  limits: rate %s, max workers %s\n", rate, workers)
	if a := s.Auto; a != nil {
		fmt.Fprintf(w, "  auto:   objective %s <= %s; %s\n", a.Objective.Signal, a.Objective.Max, a.Why)
	}
	if len(s.Overrides) > 0 {
		keys := slices.Sorted(maps.Keys(s.Overrides))
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, k+"="+s.Overrides[k])
		}
		fmt.Fprintf(w, "  overrides (enqueuer set): %s\n", strings.Join(parts, " "))
	}
}

func printGuard(w io.Writer, g *control.GuardStatus) {
	if g == nil {
		fmt.Fprintln(w, "  guard:  off (no rules, no schedule)")
		return
	}
	state := g.State
	if g.Stale {
		state += " (stale: no fresh decision; workers slow down, then pause)"
	}
	fmt.Fprintf(w, "  guard:  %s, rate x%.3g", state, g.Factor)
	if g.Leader != "" {
		fmt.Fprintf(w, ", leader %s, checked %s ago", g.Leader, time.Since(g.At).Round(time.Second))
	}
	fmt.Fprintln(w)
	for _, r := range g.Reasons {
		fmt.Fprintf(w, "    - %s\n", r)
	}
	for _, sig := range g.Signals {
		fmt.Fprintf(w, "    %-28s %s\n", sig.Rule, signalLine(sig, g.Baseline))
	}
}

func signalLine(s guard.SignalView, baseline map[string]float64) string {
	var b strings.Builder
	if s.Value != nil {
		b.WriteString(fmtNum(*s.Value))
	} else {
		b.WriteString("no reading: " + s.Err)
	}
	for _, t := range []struct {
		name string
		v    *float64
	}{{"slow>", s.Slow}, {"pause>", s.Pause}, {"clear<", s.Clear}} {
		if t.v != nil {
			fmt.Fprintf(&b, "  %s%s", t.name, fmtNum(*t.v))
		}
	}
	if v, ok := baseline[s.Rule]; ok {
		fmt.Fprintf(&b, "  baseline %s", fmtNum(v))
	}
	if s.Action != "" {
		fmt.Fprintf(&b, "  [%s]", s.Action)
	}
	if s.Note != "" {
		fmt.Fprintf(&b, "  (%s)", s.Note)
	}
	return b.String()
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'g', 4, 64) }

func listJobs(ctx context.Context, e *env, c *control.Control, asJSON bool) error {
	jobs, err := c.Jobs(ctx)
	if err != nil {
		return err
	}
	sort.Strings(jobs)
	var all []*control.Status
	for _, j := range jobs {
		s, err := c.Status(ctx, j)
		if errors.Is(err, control.ErrUnknownJob) {
			continue // cleaned up while we listed, or its ledger was removed by hand
		}
		if err != nil {
			// Anything else (Redis failing, a meta edited by hand) must
			// show, not make the job silently vanish from the list.
			return err
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

// printHistory prints the job's guard changes, newest first: when, from
// what to what (state and rate factor), the reasons and every signal.
func printHistory(ctx context.Context, e *env, c *control.Control, job string, n int, asJSON bool) error {
	changes, err := c.History(ctx, job, max(n, 0))
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(changes)
	}
	if len(changes) == 0 {
		fmt.Fprintf(e.stdout, "%s: no guard changes recorded (the guard kept it running at full rate, or has not looked yet)\n", job)
		return nil
	}
	for _, ch := range changes {
		names := slices.Sorted(maps.Keys(ch.Signals))
		sig := make([]string, len(names))
		for i, k := range names {
			sig[i] = fmt.Sprintf("%s=%g", k, ch.Signals[k])
		}
		from := string(ch.From)
		if from == "" {
			from = "-"
		}
		fmt.Fprintf(e.stdout, "%s  %s → %s  rate ×%.3g → ×%.3g", ch.At.Local().Format("2006-01-02 15:04:05"), from, ch.State, ch.FromFactor, ch.Factor)
		if len(ch.Reasons) > 0 {
			fmt.Fprintf(e.stdout, "  because %s", strings.Join(ch.Reasons, "; "))
		}
		if len(sig) > 0 {
			fmt.Fprintf(e.stdout, "  [%s]", strings.Join(sig, " "))
		}
		fmt.Fprintln(e.stdout)
	}
	return nil
}
