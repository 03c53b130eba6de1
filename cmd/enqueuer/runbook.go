package main

import (
	"fmt"
	"io"
	"strings"
	"text/template"
	"time"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/dial"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/ledger"
)

// runbook is the Markdown the next on-call engineer follows: what the job
// does, how fast, what stops it, and exactly how to pause, resume, stop,
// verify and roll back.
var runbook = template.Must(template.New("runbook").Funcs(template.FuncMap{
	// cell keeps SQL's || from ending a Markdown table cell.
	"cell": func(s string) string { return strings.ReplaceAll(s, "|", `\|`) },
}).Parse(`# Runbook: {{if .Spec.Copy}}copy{{else if .Spec.Delete}}chunked delete{{else}}backfill{{end}} {{.Spec.Name}}

Generated {{.Now}} by ` + "`enqueuer plan -job {{.File}} --runbook`" + `.{{if .Spec.DryRun}} **This job is a dry run: every batch rolls back.**{{end}}

## What it does

| | |
|---|---|
| table | ` + "`{{.Spec.Table}}`" + `, key ` + "`{{.Spec.Key}}`" + ` |
| rows | about {{.Plan.EstimatedRows}} in the table, about {{.Plan.EstimatedTodo}} pending |
| pending rows | ` + "`{{cell .Spec.Pending}}`" + ` |
| kind | {{.Spec.Kind}}: {{if .Spec.Copy}}copies the pending rows into ` + "`{{.Spec.Copy.To}}`" + ` (on conflict: {{.Spec.Copy.OnConflict}}){{else if .Spec.Delete}}deletes the pending rows{{else}}updates the pending rows{{end}} |
| change | {{if .Spec.SQL}}` + "`{{cell .Spec.SQL}}`" + `{{else if .Spec.Set}}` + "`SET {{cell .Spec.Set}}`" + `{{else}}` + "`{{cell .Plan.WriteSQL}}`" + `{{end}} |
| key range | [{{.Plan.From}}, {{.Plan.To}}] in {{.Plan.Ranges}} ranges of {{.Spec.TaskSpan}} keys |
| read / write | read {{.Spec.ReadBatch}} keys per step; write {{.Batch}} per transaction; sleep {{.Spec.Sleep.D}} between batches |
| timeouts | lock {{.Spec.Timeouts.Lock.D}}, statement {{.Spec.Timeouts.Statement.D}} (SET LOCAL in every batch) |
| fleet rate | {{.Rate}} |
| batches in flight | {{.Workers}} |
| expected duration | {{.Duration}} |
| database | DSN in the environment variable ` + "`{{.Spec.DatabaseEnv}}`" + ` on the workers and the enqueuer |

## Stop rules and signals watched

{{if .Spec.Guard.Rules}}One worker samples these every {{.Spec.Guard.CheckEvery.D}}; a slow rule halves the fleet rate each check while it holds, a pause rule pauses the job (held 30 s after it clears, doubling if it fires again within the hour). A rule whose signal cannot be read counts as a slow-down, then a pause.

| rule | source | slow above | pause above | clear below | for |
|---|---|---|---|---|---|
{{range .Spec.Guard.Rules}}| {{.Name}} | {{if .Prometheus}}PromQL ` + "`{{cell .Prometheus}}`" + `{{else if .SQL}}SQL ` + "`{{cell .SQL}}`" + `{{else if .HTTP}}GET ` + "`{{cell .HTTP}}`" + `{{with .JSONField}} field ` + "`{{.}}`" + `{{end}}{{else}}{{.Signal}}{{end}} | {{.SlowAbove}} | {{.PauseAbove}} | {{.ClearBelow}} | {{.For.D}} |
{{end}}{{else}}**No stop rules** (` + "`guard: {rules: []}`" + `): nothing slows or pauses this job but you.
{{end}}{{with .Spec.Schedule}}
Schedule ({{.Timezone}}), the first matching window sets the rate multiplier (0 pauses):
{{range .Windows}}
- {{.Days}} {{.From}}–{{.To}}: ×{{.Rate}}{{end}}
{{end}}
Watch it: ` + "`enqueuer status {{.Spec.Name}}`" + ` (guard state, reasons and every signal against its limits).

## Retries

A batch that fails with a deadlock, serialization failure, lock or statement timeout or a lost connection is retried up to {{.Spec.Retries}} times with jittered exponential backoff (100 ms doubling to 5 s); a lock timeout, statement timeout or deadlock also cuts the next batch to a tenth. When one spot keeps timing out for all {{.Spec.Retries}} attempts, the rest of its range is split in two and both halves are requeued. Errors retrying cannot fix (syntax, missing column, constraint) fail the range at once; ` + "`enqueuer status`" + ` shows why. Fix the cause, then run ` + "`enqueuer start -job {{.File}}`" + ` again: it re-enqueues failed ranges only.

## Pause, resume, slow down, stop

Pausing finishes the batch in flight, commits it and hands the range back; nothing is cut halfway.

Every command below acts on the fleet's Redis, {{.Redis}}, under the key prefix ` + "`{{.Prefix}}`" + `. A command pointed at another Redis, database or prefix succeeds and pauses nothing, so first set the shell up as the fleet is:

` + "```sh" + `
export REDIS_URL='{{.RedisURL}}'   # add the password if the fleet's has one: redis://user:PASSWORD@host…
export EBB_PREFIX='{{.Prefix}}'{{if .CAFile}}
export REDIS_CA_FILE='{{.CAFile}}'{{end}}
` + "```" + `

| | command | by hand |
|---|---|---|
| pause this job | ` + "`enqueuer pause {{.Spec.Name}}`" + ` | ` + "`{{.CLI}} SET '{{.PauseKey}}' 1`" + ` |
| resume it | ` + "`enqueuer resume {{.Spec.Name}}`" + ` | ` + "`{{.CLI}} DEL '{{.PauseKey}}'`" + ` |
| pause every job | ` + "`enqueuer pause`" + ` | ` + "`{{.CLI}} SET '{{.GlobalKey}}' 1`" + ` |
| pause the queue | Asynqmon: Queues → {{.Queue}} → Pause | ` + "`{{.CLI}} SET '{{.QueueKey}}' 1`" + ` |
| slow down | ` + "`enqueuer set {{.Spec.Name}} --rate N`" + ` (also --max-workers, --batch-max, --sleep) | ` + "`{{.CLI}} HSET '{{.OverridesKey}}' rate N`" + ` |
| back to the file's limits | ` + "`enqueuer set {{.Spec.Name}} --clear`" + ` | ` + "`{{.CLI}} DEL '{{.OverridesKey}}'`" + ` |
| stop for good | pause, then ` + "`enqueuer cleanup {{.Spec.Name}}`" + ` (it waits for the batches in flight; it refuses a job that is not paused) | |

Scaling workers up or down is safe at any time; a worker that dies loses at most the batch in flight, which the next worker redoes.

## Verify

{{if .Spec.Copy}}` + "`enqueuer verify {{.Spec.Name}}`" + ` walks the source's ranges in short read-only chunks (at the job's pace, held while the guard says pause) and compares each chunk with ` + "`{{.Spec.Copy.To}}`" + `: row counts and a checksum of the copied columns, then row by row by key where they differ. It names every row missing from the target, different there, or there without a source row, exits 1 on any, and stores its report with the job.

If verify finds differences: ` + "`enqueuer repair {{.Spec.Name}}`" + ` reopens the ranges with missing rows{{if eq .Spec.Copy.OnConflict "update"}} or different rows{{end}} and the fleet copies them again; run verify again once status shows done.{{if ne .Spec.Copy.OnConflict "update"}} Rows that differ are kept as they are (on_conflict: nothing): set ` + "`copy.on_conflict: update`" + ` and start the job again to overwrite them.{{end}} Target rows without a source row are never deleted by ebb.
{{else if .Spec.Delete}}` + "`enqueuer verify {{.Spec.Name}}`" + ` reads every row left in the job's ranges in short read-only chunks (at the job's pace, held while the guard says pause) and proves that none still matches ` + "`{{cell .Spec.Pending}}`" + `. It exits 1 on any, names its range and key, and stores its report with the job. Before starting, ` + "`enqueuer plan -job {{.File}} --count`" + ` counts per range what would be deleted, deleting nothing.

If verify finds rows left: ` + "`enqueuer repair {{.Spec.Name}}`" + ` reopens those ranges and the fleet deletes them; run verify again once status shows done. Deleted rows stay as dead tuples until vacuum: the dead_tuples_ratio rule slows the job past 30 % of the table and pauses it past 60 % until autovacuum catches up.
{{else}}` + "`enqueuer verify {{.Spec.Name}}`" + ` reads every row of the job's ranges in short read-only chunks (at the job's pace, held while the guard says pause) and counts rows still matching ` + "`{{cell .Spec.Pending}}`" + `{{if .Spec.Check}} and rows failing ` + "`{{cell .Spec.Check}}`" + `{{else}} — the job file has no ` + "`check:`" + ` expression, so values are not tested; add one{{end}}. It names each wrong range and key, exits 1 on any problem and stores its report with the job. ` + "`enqueuer verify {{.Spec.Name}} --sample`" + ` is a spot check in a second; it proves nothing about the rows it did not read.

If verify finds rows still pending: ` + "`enqueuer repair {{.Spec.Name}}`" + ` reopens those ranges and the fleet redoes them; run verify again once status shows done. Rows that fail the check without matching the pending predicate are not rewritten by the job: fix them by hand or widen ` + "`pending:`" + `.
{{end}}
## Rollback

{{if .Spec.Rollback}}From the job file (ebb never runs this):

` + "```" + `
{{.Spec.Rollback}}
` + "```" + `
{{else}}The job file gives no rollback. Write one (` + "`rollback:`" + `) before you start: how to undo the change, and who decides.
{{end}}
## Before you start

- [ ] ` + "`enqueuer plan`" + ` shows both statements using the key index (below).
- [ ] A dry run (` + "`enqueuer start -job {{.File}} --dry-run`" + `, then ` + "`enqueuer cleanup {{.Spec.Name}}`" + `) showed the timings and no guard trouble.
- [ ] The workers' database role has ` + "`pg_monitor`" + ` so the guard can see lock waits and replication.
- [ ] Someone on call knows this runbook exists.

## Statements

Read:

` + "```sql" + `
{{.Plan.ReadSQL}}
` + "```" + `

Write:

` + "```sql" + `
{{.Plan.WriteSQL}}
` + "```" + `
`))

type runbookData struct {
	Spec                                               *jobspec.Spec
	Plan                                               *control.PlanReport
	File, Now, Batch, Rate, Workers, Duration          string
	Queue, PauseKey, GlobalKey, QueueKey, OverridesKey string
	// Redis describes the fleet's Redis for a reader; RedisURL is its URL
	// without the password, Prefix the key prefix, CAFile REDIS_CA_FILE,
	// and CLI the redis-cli invocation that reaches it.
	Redis, RedisURL, Prefix, CAFile, CLI string
}

// fleet is where the fleet's keys live, as the enqueuer was told:
// REDIS_URL, REDIS_CA_FILE and EBB_PREFIX.
type fleet struct {
	redisURL, caFile, prefix string
}

func writeRunbook(w io.Writer, spec *jobspec.Spec, p *control.PlanReport, file string, f fleet, queue string, now time.Time) error {
	l := ledger.New(nil, f.prefix)
	rawURL := f.redisURL
	if rawURL == "" {
		rawURL = dial.DefaultRedisURL
	}
	d := runbookData{
		Prefix: l.Prefix(), RedisURL: dial.Redact(rawURL), CAFile: f.caFile, CLI: redisCLI(rawURL, f.caFile),
		Spec: spec, Plan: p, File: file, Now: now.UTC().Format(time.RFC3339), Batch: batchLine(spec.Batch),
		Rate: "unlimited", Workers: "unlimited", Duration: "unbounded by a rate: measure it with a dry run",
		Queue: queue, PauseKey: l.PauseKey(spec.Name), GlobalKey: l.GlobalPauseKey(),
		QueueKey: ledger.QueuePausedKey(queue), OverridesKey: l.OverridesKey(spec.Name),
	}
	d.Redis = "`" + d.RedisURL + "` (`REDIS_URL`; its password, if any, is not shown)"
	if spec.AutoRate {
		d.Rate = spec.RateLine()
		d.Duration = "set by rate: auto as it runs: enqueuer status shows the rate it holds now"
	}
	if spec.Rate > 0 {
		d.Rate = fmt.Sprintf("%g rows/s for the whole fleet", spec.Rate)
		secs := float64(p.EstimatedTodo) / spec.Rate
		d.Duration = fmt.Sprintf("about %s for %d pending rows at %g rows/s (longer while the guard slows or pauses it)",
			(time.Duration(secs) * time.Second).Round(time.Second), p.EstimatedTodo, spec.Rate)
	}
	if spec.MaxWorkers > 0 {
		d.Workers = fmt.Sprintf("at most %d across the fleet", spec.MaxWorkers)
	}
	if err := runbook.Execute(w, d); err != nil {
		return fmt.Errorf("render runbook: %w", err)
	}
	return nil
}

// redisCLI is the redis-cli invocation that reaches the Redis at rawURL:
// -u "$REDIS_URL" carries host, port, database, user and password, and a
// rediss:// URL adds --tls (and --cacert for a CA file).
func redisCLI(rawURL, caFile string) string {
	cli := `redis-cli -u "$REDIS_URL"`
	if strings.HasPrefix(rawURL, "rediss://") {
		cli += " --tls"
		if caFile != "" {
			cli += ` --cacert "$REDIS_CA_FILE"`
		}
	}
	return cli
}
