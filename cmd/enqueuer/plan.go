package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/dial"
	"github.com/ebbhq/ebb/internal/jobspec"
)

const planHelp = `enqueuer plan -job FILE [--json]

Validates the job file, connects to the database named by its database_env,
and shows the key bounds, estimated rows, number of ranges, and the EXPLAIN of
the read and write statements. Nothing is written. Exits 2 when the job is
invalid or a statement would not use an index on the key.

Flags:
`

func runPlan(ctx context.Context, e *env, args []string) error {
	fs := newFlags("plan", planHelp, e)
	jobFile := fs.String("job", "", "job file (YAML)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	spec, err := loadJob(*jobFile)
	if err != nil {
		return err
	}
	pool, err := dial.PostgresDSN(ctx, spec.DatabaseEnv, e.getenv(spec.DatabaseEnv))
	if err != nil {
		return err
	}
	defer pool.Close()
	// Plan needs no Redis: it must work before the fleet exists.
	p, err := control.Plan(ctx, pool, spec)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	}
	w := e.stdout
	fmt.Fprintf(w, "job %s on %s (key %s)\n", p.Job, p.Table, spec.Key)
	fmt.Fprintf(w, "  key bounds:       min %s, max %s\n", ptr(p.Min), ptr(p.Max))
	fmt.Fprintf(w, "  job range:        [%d, %d]\n", p.From, p.To)
	fmt.Fprintf(w, "  estimated rows:   %d in the table, %d pending\n", p.EstimatedRows, p.EstimatedTodo)
	fmt.Fprintf(w, "  ranges:           %d of %d keys\n", p.Ranges, spec.TaskSpan)
	fmt.Fprintf(w, "  per step:         read %d keys, write %d rows per transaction, sleep %s\n", spec.ReadBatch, spec.Batch, spec.Sleep.D())
	fmt.Fprintf(w, "  timeouts:         lock %s, statement %s; %d attempts per batch\n", spec.Timeouts.Lock.D(), spec.Timeouts.Statement.D(), spec.Retries)
	for _, n := range p.Notes {
		fmt.Fprintf(w, "  note:             %s\n", n)
	}
	fmt.Fprintf(w, "\nread:  %s\n%s\nwrite: %s\n%s", p.ReadSQL, indent(p.ReadPlan), p.WriteSQL, indent(p.WritePlan))
	fmt.Fprintln(w, "\nOK: both statements use an index on the key. Start with: enqueuer start -job", *jobFile)
	return nil
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

func ptr(v *int64) string {
	if v == nil {
		return "(no rows)"
	}
	return fmt.Sprint(*v)
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return "    " + strings.Join(lines, "\n    ") + "\n"
}
