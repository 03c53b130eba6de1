package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/ledger"
)

type bundle struct {
	t     *testing.T
	db    *ebbtest.DB
	redis *ebbtest.RedisEnv
	env   map[string]string
	dir   string
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{t: t, db: ebbtest.Schema(t), redis: ebbtest.Redis(t), dir: t.TempDir()}
	b.env = map[string]string{
		"REDIS_URL":    ebbtest.RedisURL(),
		"EBB_PREFIX":   b.redis.Prefix,
		"DATABASE_URL": ebbtest.DatabaseURL(),
	}
	orders := b.db.Table("orders")
	b.db.Exec(t, "CREATE TABLE "+orders+" (id bigint PRIMARY KEY, legacy_state int NOT NULL, status text, code text)")
	b.db.Exec(t, "INSERT INTO "+orders+" (id, legacy_state, code) SELECT g, g % 5, 'c' || g FROM generate_series(1, 25000) g")
	b.db.Exec(t, "ANALYZE "+orders)
	return b
}

func (b *bundle) jobFile(body string) string {
	b.t.Helper()
	p := filepath.Join(b.dir, fmt.Sprintf("job-%s.yaml", ebbtest.Suffix()))
	require.NoError(b.t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

func (b *bundle) goodJob(name string) string { return b.ordersJob(name, "") }

// ordersJob is a job file filling status on the test's orders table, in
// ranges of 10,000 keys; extra (YAML lines) adds fields.
func (b *bundle) ordersJob(name, extra string) string {
	return b.jobFile(fmt.Sprintf(`name: %s
table: %s
key: id
pending: status IS NULL
set: status = 's' || legacy_state
task_span: 10000
%s`, name, b.db.Table("orders"), extra))
}

// guardJob is goodJob with a guard block (flow YAML after "guard: {").
func (b *bundle) guardJob(guard string) string {
	return b.jobFile(fmt.Sprintf("name: g-%s\ntable: %s\nkey: id\npending: status IS NULL\nset: status = 'x'\nguard: {%s}\n",
		ebbtest.Suffix(), b.db.Table("orders"), guard))
}

func (b *bundle) run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb, func(k string) string { return b.env[k] })
	return code, out.String(), errb.String()
}

// TestStartTwice: the second start enqueues nothing and says so.
func TestStartTwice(t *testing.T) {
	t.Parallel()
	b := setup(t)
	job := b.goodJob("twice-" + ebbtest.Suffix())
	code, out, errOut := b.run("start", "-job", job, "-queue", b.redis.Queue)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "enqueued 3,")
	code, out, errOut = b.run("start", "-job", job, "-queue", b.redis.Queue)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "enqueued 0, already queued 3")
	require.Contains(t, out, "nothing new was enqueued")
}

// TestStartKeepsSlicing: starting again with another task_span keeps the
// first slicing, so done marks keep meaning the same keys, and says so.
func TestStartKeepsSlicing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	name := "slice-" + ebbtest.Suffix()
	code, _, errOut := b.run("start", "-job", b.goodJob(name), "-queue", b.redis.Queue)
	require.Equal(t, 0, code, errOut)
	wider := b.jobFile(fmt.Sprintf("name: %s\ntable: %s\nkey: id\npending: status IS NULL\nset: status = 'x'\ntask_span: 5000\n", name, b.db.Table("orders")))
	code, out, errOut := b.run("start", "-job", wider, "-queue", b.redis.Queue)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "3 ranges over [1, 25000]")
	require.Contains(t, out, "its stored slicing is kept")
	// The edited file's spec was stored: start says so, and which fields.
	require.Contains(t, out, "the job file changed since the last start (set, task_span): the new spec is stored")
	require.Contains(t, out, "no range was enqueued: every range is already queued or done")
}

// TestPauseFinishedJob: pausing a job that has finished is refused with
// the reason (exit 2), and sets nothing.
func TestPauseFinishedJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	name := "fin-" + ebbtest.Suffix()
	code, _, errOut := b.run("start", "-job", b.goodJob(name), "-queue", b.redis.Queue)
	require.Equal(t, 0, code, errOut)
	l := ledger.New(b.redis.Client, b.redis.Prefix)
	for r := int64(0); r < 3; r++ {
		require.NoError(t, l.MarkDone(context.Background(), name, r, 0))
	}
	code, _, errOut = b.run("pause", name)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "job "+name+" finished at ")
	require.Contains(t, errOut, "nothing is left to pause")
	require.Zero(t, b.redis.Client.Exists(context.Background(), l.PauseKey(name)).Val())
}

// TestStatusAndPause walks the operator's commands on a job no worker runs.
func TestStatusAndPause(t *testing.T) {
	t.Parallel()
	b := setup(t)
	name := "st-" + ebbtest.Suffix()
	code, _, errOut := b.run("start", "-job", b.goodJob(name), "-queue", b.redis.Queue)
	require.Equal(t, 0, code, errOut)

	status := func() map[string]any {
		code, out, errOut := b.run("status", name, "--json")
		require.Equal(t, 0, code, errOut)
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &m))
		return m
	}
	s := status()
	require.Equal(t, "queued", s["state"])
	for _, k := range []string{"ranges_total", "ranges_done", "ranges_failed", "rows_done"} {
		require.Contains(t, s, k)
	}
	require.EqualValues(t, 3, s["ranges_total"])

	code, out, _ := b.run("pause", name)
	require.Equal(t, 0, code)
	key := b.redis.Prefix + "{" + name + "}:pause"
	require.Contains(t, out, key)
	s = status()
	require.Equal(t, "paused", s["state"])
	// The flag records who paused and when, and status shows it.
	v := b.redis.Client.Get(context.Background(), key).Val()
	require.Regexp(t, `^paused by \S+@\S+ via enqueuer at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, v)
	require.Equal(t, key+" is set ("+v+")", s["pause_reason"])
	code, out, _ = b.run("status", name)
	require.Equal(t, 0, code)
	require.Contains(t, out, "paused: "+key+" is set (paused by ")
	// A flag set by hand still pauses, and says only that it is set.
	require.NoError(t, b.redis.Client.Set(context.Background(), key, "1", 0).Err())
	require.Equal(t, key+" is set", status()["pause_reason"])
	code, _, _ = b.run("resume", name)
	require.Equal(t, 0, code)
	require.Equal(t, "queued", status()["state"])

	code, _, _ = b.run("pause")
	require.Equal(t, 0, code)
	require.Equal(t, "paused", status()["state"])
	code, _, _ = b.run("resume")
	require.Equal(t, 0, code)

	code, out, _ = b.run("status")
	require.Equal(t, 0, code)
	require.Contains(t, out, name)
}

// TestStatusListErrors: the job list skips a name whose ledger is gone (a
// job cleaned up while listing) but reports a job it cannot read instead of
// leaving it out.
func TestStatusListErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	l := ledger.New(b.redis.Client, b.redis.Prefix)
	name := "list-" + ebbtest.Suffix()
	code, _, errOut := b.run("start", "-job", b.goodJob(name), "-queue", b.redis.Queue)
	require.Equal(t, 0, code, errOut)
	require.NoError(t, b.redis.Client.SAdd(ctx, l.JobsKey(), "gone-"+ebbtest.Suffix()).Err())
	code, out, errOut := b.run("status")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, name)

	require.NoError(t, b.redis.Client.HSet(ctx, l.MetaKey(name), "slicing", "garbage").Err())
	code, out, errOut = b.run("status")
	require.Equal(t, 1, code, "stdout: %s", out)
	require.Contains(t, errOut, `meta: slicing "garbage"`)
	require.Contains(t, errOut, "edited by hand")
}

// TestBadInput: every operator mistake exits 2 with a message naming the
// thing; an unreachable server exits 1; no password is ever printed.
func TestBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	orders := b.db.Table("orders")
	tests := []struct {
		name string
		args func() []string
		env  map[string]string
		code int
		want string
	}{
		{"unknown field", func() []string {
			return []string{"plan", "-job", b.jobFile("name: x\ntable: t\nkey: id\npendng: a IS NULL\nset: a = 1\n")}
		}, nil, 2, `line 4: field "pendng": unknown field`},
		{"sql without $2", func() []string {
			return []string{"plan", "-job", b.jobFile(fmt.Sprintf("name: x\ntable: %s\nkey: id\npending: status IS NULL\nsql: UPDATE t SET a = 1 WHERE id >= $1\n", orders))}
		}, nil, 2, `field "sql": must use both $1 and $2`},
		{"missing table", func() []string {
			return []string{"plan", "-job", b.jobFile(fmt.Sprintf("name: x\ntable: %s.nope\nkey: id\npending: status IS NULL\nset: status = 'x'\n", b.db.Schema))}
		}, nil, 2, "does not exist"},
		{"text key", func() []string {
			return []string{"plan", "-job", b.jobFile(fmt.Sprintf("name: x\ntable: %s\nkey: code\npending: status IS NULL\nset: status = 'x'\n", orders))}
		}, nil, 2, `key column "code"`},
		{"no job file", func() []string { return []string{"start"} }, nil, 2, "-job FILE is required"},
		{"missing job file", func() []string { return []string{"plan", "-job", "/nonexistent.yaml"} }, nil, 2, "no such file"},
		{"unknown job", func() []string { return []string{"status", "no-such-job"} }, nil, 2, `unknown job "no-such-job"`},
		{"pause unknown job", func() []string { return []string{"pause", "no-such-job"} }, nil, 2, `unknown job "no-such-job"`},
		{"watch with json", func() []string { return []string{"status", "no-such-job", "--watch", "--json"} }, nil, 2, "--watch and --json do not mix"},
		{"resume unknown job", func() []string { return []string{"resume", "no-such-job"} }, nil, 2, `unknown job "no-such-job"`},
		{"queue with a brace", func() []string { return []string{"start", "-job", b.goodJob("brace"), "-queue", "a{b}"} }, nil, 2, "break asynq's Redis hash tags"},
		{"unknown command", func() []string { return []string{"frobnicate"} }, nil, 2, "unknown command"},
		{"unreachable redis", func() []string { return []string{"status", "x"} },
			map[string]string{"REDIS_URL": "redis://:s3cret@127.0.0.1:1/0"}, 1, "cannot reach Redis at redis://127.0.0.1:1/0"},
		{"unreachable postgres", func() []string { return []string{"plan", "-job", b.goodJob("pg")} },
			map[string]string{"DATABASE_URL": "postgres://u:s3cret@127.0.0.1:1/db"}, 1, "cannot reach PostgreSQL at postgres://127.0.0.1:1/db"},
		{"unset dsn", func() []string { return []string{"plan", "-job", b.goodJob("pg")} },
			map[string]string{"DATABASE_URL": ""}, 1, "environment variable DATABASE_URL is empty"},
		// The guard's bad input is refused at plan and start alike.
		{"rule with unknown signal", func() []string {
			return []string{"plan", "-job", b.guardJob("rules: [{signal: replication_lagg, pause_above: 10}]")}
		}, nil, 2, `unknown signal "replication_lagg"`},
		{"pause_above below clear_below", func() []string {
			return []string{"start", "-job", b.guardJob("rules: [{signal: lock_waits, pause_above: 2, clear_below: 5}]"), "-queue", b.redis.Queue}
		}, nil, 2, "pause_above 2 is below clear_below 5"},
		{"unparsable prometheus url", func() []string {
			return []string{"plan", "-job", b.guardJob("rules: [{name: p95, prometheus: 'up', pause_above: 1}]")}
		}, map[string]string{"PROMETHEUS_URL": "http://u:s3cret@[::1"}, 2, "PROMETHEUS_URL"},
		{"prometheus url unset at start", func() []string {
			return []string{"start", "-job", b.guardJob("rules: [{name: p95, prometheus: 'up', pause_above: 1}]"), "-queue", b.redis.Queue}
		}, nil, 2, "PROMETHEUS_URL"},
		{"bad schedule", func() []string {
			return []string{"plan", "-job", b.jobFile(fmt.Sprintf("name: x\ntable: %s\nkey: id\npending: status IS NULL\nset: status = 'x'\nschedule: {timezone: Europe/Berlinn, windows: [{days: mon-fri, from: '11:30', to: '14:00', rate: 0.25}]}\n", orders))}
		}, nil, 2, `"Europe/Berlinn" is not a time zone`},
		{"a typo in range.to: too many range tasks", func() []string {
			return []string{"start", "-job", b.jobFile(fmt.Sprintf("name: typo-%s\ntable: %s\nkey: id\npending: status IS NULL\nset: status = 'x'\nrange: {from: 1, to: 250000000000}\n", ebbtest.Suffix(), orders)), "-queue", b.redis.Queue}
		}, nil, 2, "makes 2500000 range tasks, over max_ranges 50000"},
		{"max_ranges in the job file", func() []string {
			return []string{"plan", "-job", b.jobFile(fmt.Sprintf("name: x\ntable: %s\nkey: id\npending: status IS NULL\nset: status = 'x'\ntask_span: 1000\nmax_ranges: 10\n", orders))}
		}, nil, 2, "makes 25 range tasks, over max_ranges 10"},
		{"malformed yaml", func() []string {
			return []string{"plan", "-job", b.jobFile("name: x\ntable: orders\n  key: id\n")}
		}, nil, 2, "job file line 3: not valid YAML"},
		{"verify unknown job", func() []string { return []string{"verify", "no-such-job"} }, nil, 2, `unknown job "no-such-job"`},
		{"cleanup unknown job", func() []string { return []string{"cleanup", "no-such-job"} }, nil, 2, `unknown job "no-such-job"`},
		{"set unknown job", func() []string { return []string{"set", "no-such-job", "--rate", "5"} }, nil, 2, `unknown job "no-such-job"`},
		{"set nothing", func() []string { return []string{"set", "x"} }, nil, 2, "nothing to set"},
		{"bad log format", func() []string { return []string{"status", "-log-format", "xml"} }, nil, 2, `invalid value "xml" for flag -log-format: use text or json`},
		{"set bad rate", func() []string { return []string{"set", "x", "--rate", "fast"} }, nil, 2, `"fast" is not a number`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{}
			for k, v := range b.env {
				env[k] = v
			}
			for k, v := range tc.env {
				env[k] = v
			}
			var out, errb bytes.Buffer
			code := run(context.Background(), tc.args(), &out, &errb, func(k string) string { return env[k] })
			require.Equal(t, tc.code, code, "stdout: %s\nstderr: %s", out.String(), errb.String())
			require.Contains(t, errb.String(), tc.want)
			require.NotContains(t, out.String()+errb.String(), "s3cret")
		})
	}
}

// TestPlan prints the bounds and both plans for a good job.
func TestPlan(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code, out, errOut := b.run("plan", "-job", b.goodJob("plan-"+ebbtest.Suffix()))
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "min 1, max 25000")
	require.Contains(t, out, "ranges:           3")
	require.Contains(t, out, "Index")
}

// TestPlanUUID: plan on a uuid key shows its bounds as uuids, about
// rows/task_span ranges, and index scans.
func TestPlanUUID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	events := b.db.Table("events")
	b.db.Exec(t, "CREATE TABLE "+events+" (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), source text)")
	b.db.Exec(t, "INSERT INTO "+events+" (source) SELECT NULL FROM generate_series(1, 25000)")
	b.db.Exec(t, "ANALYZE "+events)
	var lo, hi string
	require.NoError(t, b.db.Pool.QueryRow(context.Background(),
		"SELECT (SELECT id::text FROM "+events+" ORDER BY id LIMIT 1), (SELECT id::text FROM "+events+" ORDER BY id DESC LIMIT 1)").Scan(&lo, &hi))
	job := b.jobFile(fmt.Sprintf("name: plan-uuid-%s\ntable: %s\nkey: id\npending: source IS NULL\nset: source = 'web'\ntask_span: 10000\n", ebbtest.Suffix(), events))
	code, out, errOut := b.run("plan", "-job", job)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, fmt.Sprintf("min %s, max %s", lo, hi))
	require.Contains(t, out, "ranges:           3")
	require.Contains(t, out, "Index")
}

// TestHelp: every command prints a useful -h and exits 0.
func TestHelp(t *testing.T) {
	t.Parallel()
	var top bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"-h"}, &top, &top, func(string) string { return "" }))
	for _, flag := range []string{"--watch", "--runbook", "plan -job FILE [--json]", "status [JOB] [--json]", "cleanup JOB [--force] [--json]"} {
		require.Contains(t, top.String(), flag, "the top-level help lists it")
	}
	for _, cmd := range []string{"plan", "start", "status", "pause", "resume", "set", "verify", "repair", "cleanup", "ui"} {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{cmd, "-h"}, &out, &errb, func(string) string { return "" })
		require.Equal(t, 0, code, cmd)
		require.Contains(t, out.String(), "enqueuer "+cmd, cmd)
	}
}

// TestSetOverrides: set stores live limits that status shows; --clear
// drops them.
func TestSetOverrides(t *testing.T) {
	t.Parallel()
	b := setup(t)
	name := "set-" + ebbtest.Suffix()
	code, _, errOut := b.run("start", "-job", b.jobFile(fmt.Sprintf(`name: %s
table: %s
key: id
pending: status IS NULL
set: status = 'x'
rate: 2000
max_workers: 4
`, name, b.db.Table("orders"))), "-queue", b.redis.Queue)
	require.Equal(t, 0, code, errOut)

	code, out, errOut := b.run("status", name)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "limits: rate 2000 rows/s, max workers 4")
	require.Contains(t, out, "guard:  none (stale", "no worker runs: the guard has not spoken")

	code, out, errOut = b.run("set", name, "--rate", "500", "--max-workers", "1", "--batch-max", "100", "--sleep", "250ms")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "rate = 500")
	code, out, _ = b.run("status", name, "--json")
	require.Equal(t, 0, code)
	var s struct {
		Rate       float64           `json:"rate"`
		MaxWorkers int               `json:"max_workers"`
		Overrides  map[string]string `json:"overrides"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &s))
	require.Equal(t, 500.0, s.Rate)
	require.Equal(t, 1, s.MaxWorkers)
	require.Equal(t, map[string]string{"rate": "500", "max_workers": "1", "batch_max": "100", "sleep": "250ms"}, s.Overrides)

	code, _, errOut = b.run("set", name, "--clear")
	require.Equal(t, 0, code, errOut)
	code, out, _ = b.run("status", name)
	require.Equal(t, 0, code)
	require.Contains(t, out, "limits: rate 2000 rows/s, max workers 4")
	require.NotContains(t, out, "overrides (enqueuer set)")
	// Both sets are in the job's operator actions, newest first, with who.
	require.Regexp(t, `set by \S+ via enqueuer: cleared overrides\n.*set by \S+ via enqueuer: batch_max=100 max_workers=1 rate=500 sleep=250ms\n`, out)
}

// TestRunbook: plan --runbook is a Markdown runbook with the job's sizes,
// expected duration, rules, exact pause/resume commands, verify and the
// rollback text, which is shown and never run.
func TestRunbook(t *testing.T) {
	t.Parallel()
	b := setup(t)
	name := "rb-" + ebbtest.Suffix()
	file := b.jobFile(fmt.Sprintf(`name: %s
table: %s
key: id
pending: status IS NULL
set: status = 's' || legacy_state
rate: 1000
max_workers: 2
check: status = 's' || legacy_state
rollback: UPDATE orders SET status = NULL WHERE status LIKE 's%%'
guard:
  rules:
    - {signal: lock_waits, pause_above: 5, clear_below: 2, for: 30s}
`, name, b.db.Table("orders")))
	code, out, errOut := b.run("plan", "-job", file, "--runbook")
	require.Equal(t, 0, code, errOut)
	for _, want := range []string{
		"# Runbook: backfill " + name,
		"about 25000 in the table",
		"1000 rows/s for the whole fleet",
		"about 25s for 25000 pending rows",
		"at most 2 across the fleet",
		"| lock_waits | lock_waits |  | 5 | 2 | 30s |",
		"`enqueuer pause " + name + "`",
		`redis-cli -u "$REDIS_URL" SET '` + b.redis.Prefix + "{" + name + "}:pause' 1",
		`redis-cli -u "$REDIS_URL" SET 'asynq:{ebb}:paused' 1`,
		"export EBB_PREFIX='" + b.redis.Prefix + "'",
		"`enqueuer verify " + name + "`",
		"`enqueuer cleanup " + name + "` (it waits for the batches in flight",
		"UPDATE orders SET status = NULL WHERE status LIKE 's%'",
		"ebb never runs this",
	} {
		require.Contains(t, out, want)
	}
	// Nothing was written: plan needs no Redis at all.
	require.Empty(t, b.redis.Client.Keys(context.Background(), b.redis.Prefix+"*").Val())

	// A fleet on another Redis, database and prefix, behind TLS with a
	// password: the runbook's commands reach it, and show no password.
	b.env["REDIS_URL"] = "rediss://ops:hunter22@redis.internal:6380/3"
	b.env["REDIS_CA_FILE"] = "/etc/ebb/redis-ca.pem"
	b.env["EBB_PREFIX"] = "billing:"
	code, out, errOut = b.run("plan", "-job", file, "--runbook")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "export REDIS_URL='rediss://redis.internal:6380/3'")
	require.Contains(t, out, "export EBB_PREFIX='billing:'")
	require.Contains(t, out, "export REDIS_CA_FILE='/etc/ebb/redis-ca.pem'")
	require.Contains(t, out, `redis-cli -u "$REDIS_URL" --tls --cacert "$REDIS_CA_FILE" SET 'billing:{`+name+`}:pause' 1`)
	require.NotContains(t, out, "hunter22")
	b.env["REDIS_URL"], b.env["EBB_PREFIX"] = ebbtest.RedisURL(), b.redis.Prefix
	delete(b.env, "REDIS_CA_FILE")

	code, out, errOut = b.run("plan", "-job", file, "--runbook", "--json")
	require.Equal(t, 0, code, errOut)
	var p struct {
		Ranges  int64  `json:"ranges"`
		Runbook string `json:"runbook"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &p))
	require.Equal(t, int64(1), p.Ranges)
	require.Contains(t, p.Runbook, "## Rollback")
}

// TestRunbookKinds: the runbook and plan --count speak the job's kind: a
// delete is counted per range before it starts (nothing deleted) and
// watched for dead tuples; a copy is verified against its target.
func TestRunbookKinds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	orders := b.db.Table("orders")
	doomed := b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE id % 10 = 3")
	del := b.jobFile(fmt.Sprintf("name: del-%s\ntable: %s\nkey: id\npending: id %% 10 = 3\ndelete: true\ntask_span: 10000\n", ebbtest.Suffix(), orders))
	code, out, errOut := b.run("plan", "-job", del, "--count")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, fmt.Sprintf("would delete %d rows (of 25000 read), in 3 ranges:", doomed))
	require.Contains(t, out, "range #0 [1,10000]: 1000 rows")
	require.Equal(t, int64(25000), b.db.Count(t, "SELECT count(*) FROM "+orders), "counting deletes nothing")
	code, out, errOut = b.run("plan", "-job", del, "--runbook")
	require.Equal(t, 0, code, errOut)
	for _, want := range []string{"# Runbook: chunked delete del-", "deletes the pending rows", "DELETE FROM", "| dead_tuples_ratio | dead_tuples_ratio | 0.3 | 0.6 | 0.2 |", "--count"} {
		require.Contains(t, out, want)
	}

	b.db.Exec(t, "CREATE TABLE "+b.db.Table("orders_v2")+" (id bigint PRIMARY KEY, state text)")
	cp := b.jobFile(fmt.Sprintf("name: cp-%s\ntable: %s\nkey: id\npending: \"true\"\ncopy: {to: %s, columns: {id: id, state: status}}\n", ebbtest.Suffix(), orders, b.db.Table("orders_v2")))
	code, out, errOut = b.run("plan", "-job", cp, "--runbook")
	require.Equal(t, 0, code, errOut)
	for _, want := range []string{"# Runbook: copy cp-", "copies the pending rows into", "ON CONFLICT (\"id\") DO NOTHING", "compares each chunk with", "Rows that differ are kept as they are (on_conflict: nothing)"} {
		require.Contains(t, out, want)
	}
}

// TestStatusHistory: status --history answers "why was it slow at 03:12?"
// after the fact: each guard change with its time, states, rate factors,
// reasons and signals, newest first.
func TestStatusHistory(t *testing.T) {
	t.Parallel()
	b := setup(t)
	name := "hist-" + ebbtest.Suffix()
	code, _, errOut := b.run("start", "-job", b.goodJob(name), "-queue", b.redis.Queue)
	require.Equal(t, 0, code, errOut)
	code, out, errOut := b.run("status", name, "--history", "10")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "no guard changes recorded")

	l := ledger.New(b.redis.Client, b.redis.Prefix)
	at := time.Date(2026, 12, 3, 3, 12, 5, 0, time.Local)
	for _, c := range []guard.Change{
		{At: at, From: guard.StateRun, State: guard.StateSlow, FromFactor: 1, Factor: 0.5, Reasons: []string{"lock_waits=7 above slow limit 5"}, Signals: map[string]float64{"lock_waits": 7, "deadlocks": 0}},
		{At: at.Add(5 * time.Second), From: guard.StateSlow, State: guard.StatePause, FromFactor: 0.5, Factor: 0.5, Reasons: []string{"lock_waits=12 above pause limit 10"}},
	} {
		raw, err := json.Marshal(c)
		require.NoError(t, err)
		require.NoError(t, l.RecordHistory(context.Background(), name, raw))
	}
	code, out, errOut = b.run("status", name, "--history", "10")
	require.Equal(t, 0, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2)
	require.Equal(t, "2026-12-03 03:12:10  slow → pause  rate ×0.5 → ×0.5  because lock_waits=12 above pause limit 10", lines[0], "newest first")
	require.Equal(t, "2026-12-03 03:12:05  run → slow  rate ×1 → ×0.5  because lock_waits=7 above slow limit 5  [deadlocks=0 lock_waits=7]", lines[1])
	code, out, _ = b.run("status", name, "--history", "1", "--json")
	require.Equal(t, 0, code)
	var changes []guard.Change
	require.NoError(t, json.Unmarshal([]byte(out), &changes))
	require.Len(t, changes, 1)
	require.Equal(t, guard.StatePause, changes[0].State)
}
