package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/dial"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
	"github.com/ebbhq/ebb/internal/rangetask"
	"github.com/ebbhq/ebb/internal/verify"
)

const planHelp = `enqueuer plan -job FILE [--json] [--runbook | --count | --estimate]

Validates the job file, connects to the database named by its database_env,
and shows the key bounds, estimated rows, number of ranges, and the EXPLAIN of
the read and write statements. Nothing is written. Exits 2 when the job is
invalid or a statement would not use an index on the key. --runbook prints
a Markdown runbook instead: sizes, rate, expected duration, stop rules, how
to pause/resume/stop/verify, and the job file's rollback: (shown, never run).
--count counts, range by range, the rows the job would update, copy or
delete (rows matching pending), reading the table in short read-only chunks
at the job's rate: a dry run that changes nothing and needs no Redis.
--estimate runs five of the job's batches from across the key space, each
rolled back, and reports per row: time, WAL bytes and index entries; then
the job's duration, its total WAL and WAL rate, next to what the server
and its standbys do now. Refused on a standby.

Flags:
`

func runPlan(ctx context.Context, e *env, args []string) error {
	fs := newFlags("plan", planHelp, e)
	jobFile := fs.String("job", "", "job file (YAML)")
	asJSON := fs.Bool("json", false, "print one JSON object (with --runbook: the plan plus a runbook field)")
	asRunbook := fs.Bool("runbook", false, "print a Markdown runbook for on-call")
	queue := fs.String("queue", rangetask.DefaultQueue, "queue the job will run on (for the runbook's commands)")
	count := fs.Bool("count", false, "count, per range, the rows the job would touch; changes nothing")
	estimate := fs.Bool("estimate", false, "measure a few rolled-back batches and predict duration and WAL")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if btoi(*count)+btoi(*asRunbook)+btoi(*estimate) > 1 {
		return bad("--count, --runbook and --estimate are different reports; pick one")
	}
	spec, err := loadJob(*jobFile)
	if err != nil {
		return err
	}
	if err := control.CheckGuard(spec, e.getenv); err != nil {
		return err
	}
	pool, err := dial.PostgresDSN(ctx, spec.DatabaseEnv, e.getenv(spec.DatabaseEnv))
	if err != nil {
		return err
	}
	defer pool.Close()
	target, closeTarget, err := control.OpenCopyTarget(ctx, spec, e.getenv)
	if err != nil {
		return err
	}
	defer closeTarget()
	// Plan needs no Redis: it must work before the fleet exists.
	p, err := control.Plan(ctx, pool, spec, target)
	if err != nil {
		return err
	}
	// After Plan: a job preflight refuses is neither counted nor sampled.
	if *count {
		return printCount(ctx, e, pool, spec, *asJSON)
	}
	if *estimate {
		return printEstimate(ctx, e, pool, spec, *asJSON)
	}
	if *asRunbook {
		var md strings.Builder
		if err := writeRunbook(&md, spec, p, *jobFile, fleet{redisURL: e.getenv("REDIS_URL"), caFile: e.getenv(dial.RedisCAEnv), prefix: e.getenv("EBB_PREFIX")}, *queue, time.Now()); err != nil {
			return err
		}
		if !*asJSON {
			_, err := io.WriteString(e.stdout, md.String())
			return err
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			*control.PlanReport
			Runbook string `json:"runbook"`
		}{p, md.String()})
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	}
	printPlan(e.stdout, spec, p, *jobFile)
	return nil
}

// printPlan prints the plan as plan shows it without --json or --runbook.
func printPlan(w io.Writer, spec *jobspec.Spec, p *control.PlanReport, jobFile string) {
	fmt.Fprintf(w, "job %s on %s (key %s, %s, walked as (%s))\n", p.Job, p.Table, spec.Key, p.Shape, strings.Join(p.Key, ", "))
	fmt.Fprintf(w, "  key bounds:       min %s, max %s\n", ptr(p.Min), ptr(p.Max))
	fmt.Fprintf(w, "  job range:        [%s, %s]\n", orZero(p.From), orZero(p.To))
	fmt.Fprintf(w, "  estimated rows:   %d in the table, %d pending\n", p.EstimatedRows, p.EstimatedTodo)
	fmt.Fprintf(w, "  ranges:           %d of %s\n", p.Ranges, sliceLine(spec))
	for i, r := range p.Slices {
		if i > 0 && r.ID != p.Slices[i-1].ID+1 {
			fmt.Fprintln(w, "                      …")
		}
		fmt.Fprintf(w, "                      %s\n", r)
	}
	fmt.Fprintf(w, "  per step:         read %d keys, write %s per transaction, sleep %s\n", spec.ReadBatch, batchLine(spec.Batch), spec.Sleep.D())
	fmt.Fprintf(w, "  timeouts:         lock %s, statement %s; %d attempts per batch, then the rest of the range is split in two\n", spec.Timeouts.Lock.D(), spec.Timeouts.Statement.D(), spec.Retries)
	fmt.Fprintf(w, "  fleet limits:     %s\n", limitsLine(spec))
	printRules(w, spec)
	for _, n := range p.Notes {
		fmt.Fprintf(w, "  note:             %s\n", n)
	}
	fmt.Fprintf(w, "\nread:  %s\n%s\nwrite: %s\n%s", p.ReadSQL, indent(p.ReadPlan), p.WriteSQL, indent(p.WritePlan))
	fmt.Fprintln(w, "\nOK: both statements use an index on the key. Start with: enqueuer start -job", jobFile)
}

// sliceLine says how the key space is cut: by arithmetic for an integer,
// by count for other keys, or by calendar windows.
func sliceLine(spec *jobspec.Spec) string {
	if !spec.Window.IsZero() {
		return spec.Window.String() + " windows (empty ones skipped)"
	}
	return fmt.Sprintf("about %d keys", spec.TaskSpan)
}

func batchLine(b jobspec.BatchSize) string {
	if !b.Adaptive() {
		return fmt.Sprintf("%d rows", b.Size)
	}
	return fmt.Sprintf("%d rows (adaptive %d-%d, p90 commit aimed at %s)", b.Size, b.Min, b.Max, b.Target.D())
}

func limitsLine(spec *jobspec.Spec) string {
	rate, workers := "rate "+spec.RateLine(), "unlimited batches in flight"
	if spec.MaxWorkers > 0 {
		workers = fmt.Sprintf("at most %d batches in flight", spec.MaxWorkers)
	}
	return rate + ", " + workers + " (change live with enqueuer set)"
}

func printRules(w io.Writer, spec *jobspec.Spec) {
	g := spec.Guard
	if len(g.Rules) == 0 {
		fmt.Fprintln(w, "  guard:            no rules (the guard watches nothing)")
	} else {
		fmt.Fprintf(w, "  guard:            checked every %s by one worker\n", g.CheckEvery.D())
	}
	for _, r := range g.Rules {
		var parts []string
		for _, t := range []struct {
			name string
			th   jobspec.Threshold
		}{{"slow above", r.SlowAbove}, {"pause above", r.PauseAbove}, {"clear below", r.ClearBelow}} {
			if t.th.Set {
				parts = append(parts, t.name+" "+t.th.String())
			}
		}
		if r.For > 0 {
			parts = append(parts, "for "+r.For.D().String())
		}
		fmt.Fprintf(w, "    rule %-24s %s: %s\n", r.Name, r.Kind(), strings.Join(parts, ", "))
	}
	if sc := spec.Schedule; sc != nil {
		for _, win := range sc.Windows {
			fmt.Fprintf(w, "    schedule %s (%s)\n", win, sc.Timezone)
		}
	}
}

func loadJob(path string) (*jobspec.Spec, error) {
	if path == "" {
		return nil, bad("-job FILE is required")
	}
	spec, err := jobspec.Load(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return nil, usageError{err}
	}
	return spec, err
}

// ptr is a key bound of the table, or why there is none.
func ptr(k keyspace.Key) string {
	if k.IsZero() {
		return "(no rows)"
	}
	return k.String()
}

// orZero is a bound of the job's range; an empty table's range has none and
// prints as [0, 0], as plan always printed it.
func orZero(k keyspace.Key) string {
	if k.IsZero() {
		return "0"
	}
	return k.String()
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return "    " + strings.Join(lines, "\n    ") + "\n"
}

// rangesCounted caps the ranges plan --count lists; --json has all.
const rangesCounted = 50

func printCount(ctx context.Context, e *env, pool *pgxpool.Pool, spec *jobspec.Spec, asJSON bool) error {
	r, err := control.Count(ctx, pool, spec, func(p verify.Progress) {
		if p.RangesDone == p.Ranges || p.RangesDone%100 == 0 {
			fmt.Fprintf(e.stderr, "count: %d/%d ranges, %d rows read\n", p.RangesDone, p.Ranges, p.Rows)
		}
	})
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(r)
	}
	verb := map[string]string{jobspec.KindFill: "update", jobspec.KindCopy: "copy", jobspec.KindDelete: "delete"}[r.Kind]
	fmt.Fprintf(e.stdout, "%s would %s %d rows (of %d read), in %d ranges:\n", spec.Name, verb, r.Rows, r.Read, len(r.Ranges))
	for i, rc := range r.Ranges {
		if i == rangesCounted {
			fmt.Fprintf(e.stdout, "  ... %d more ranges (--json lists them all)\n", len(r.Ranges)-i)
			break
		}
		fmt.Fprintf(e.stdout, "  range %s: %d rows\n", rc.Range, rc.Rows)
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func printEstimate(ctx context.Context, e *env, pool *pgxpool.Pool, spec *jobspec.Spec, asJSON bool) error {
	r, err := control.EstimateCost(ctx, pool, spec)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(r)
	}
	w := e.stdout
	mb := func(b float64) string { return fmt.Sprintf("%.1f MB", b/1e6) }
	fmt.Fprintf(w, "estimate for %s: %d sample batches, %d rows written and rolled back\n", r.Job, len(r.Samples), r.Rows)
	if r.Rows > 0 {
		fmt.Fprintf(w, "  per row:   %.3f ms, %.0f bytes of WAL, %.1f index entries\n", r.SecondsPerRow*1000, r.WALPerRow, r.IndexEntriesPerRow)
		fmt.Fprintf(w, "  pending:   about %d rows (planner estimate)\n", r.Pending)
		if r.AtRate > 0 {
			fmt.Fprintf(w, "  duration:  %s at the job's rate (%g rows/s); %s at one worker's speed with its sleep\n", r.AtRate.Round(time.Second), spec.Rate, r.OneWorker.Round(time.Second))
		} else {
			fmt.Fprintf(w, "  duration:  %s at one worker's speed with its sleep (the job has no rate)\n", r.OneWorker.Round(time.Second))
		}
		if spec.AutoRate {
			fmt.Fprintf(w, "  rate auto: %s at rate_start (%g rows/s)", r.AtAutoStart.Round(time.Second), spec.RateStart)
			if r.AtAutoMax > 0 {
				fmt.Fprintf(w, ", %s at rate_max (%g rows/s)", r.AtAutoMax.Round(time.Second), spec.RateMax)
			}
			fmt.Fprintln(w, "; it climbs from the first while the objective holds, so the real duration lies between")
		}
		fmt.Fprintf(w, "  WAL:       %s in total, %s/s while it runs\n", mb(r.WALTotal), mb(r.WALPerSecond))
	}
	fmt.Fprintf(w, "  server:    writes %s/s of WAL now\n", mb(r.ServerWALPerSecond))
	if len(r.Replicas) == 0 {
		fmt.Fprintln(w, "  standbys:  none connected")
	}
	for _, rp := range r.Replicas {
		fmt.Fprintf(w, "  standby %s: replays %s/s now, %s behind\n", rp.Name, mb(rp.BytesPerSecond), mb(float64(rp.LagBytes)))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note:      %s\n", n)
	}
	return nil
}
