package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/leader"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/runner"
)

// worker runs one in-process worker (runner and guard loop) on the test's
// queue until cleanup.
func (b *bundle) worker() {
	t := b.t
	l := ledger.New(b.redis.Client, b.redis.Prefix)
	pools := func(context.Context, string) (*pgxpool.Pool, error) { return b.db.Pool, nil }
	id := "w-" + ebbtest.Suffix()
	log := ebbtest.Logger(t)
	r, err := runner.New(runner.Config{Ledger: l, ID: id, Pools: pools, Logger: log, PauseRecheck: 200 * time.Millisecond})
	require.NoError(t, err)
	g, err := leader.New(leader.Config{Ledger: l, ID: id, Pools: pools, Logger: log, Tick: 100 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Run(ctx) }()
	srv := asynq.NewServerFromRedisClient(b.redis.Client, runner.ServerConfig(runner.ServerOptions{
		Queue: b.redis.Queue, Concurrency: 2, ShutdownTimeout: 10 * time.Second, Logger: log,
	}))
	require.NoError(t, srv.Start(r))
	t.Cleanup(func() {
		srv.Shutdown()
		cancel()
		<-done
	})
}

func (b *bundle) state(job string) string {
	b.t.Helper()
	code, out, errOut := b.run("status", job, "--json")
	require.Equal(b.t, 0, code, errOut)
	var s struct {
		State string `json:"state"`
	}
	require.NoError(b.t, json.Unmarshal([]byte(out), &s), out)
	return s.State
}

// TestLifecycle follows a job through status --json as an operator would:
// queued → running → paused → running → done, and status --watch (no
// terminal: one line per poll) returns once it is done.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	job := "life-" + ebbtest.Suffix()
	file := b.ordersJob(job, "rate: 5000\nguard: {check_every: 1s, rules: []}\n")
	code, _, errOut := b.run("start", "-job", file, "-queue", b.redis.Queue)
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "queued", b.state(job))

	b.worker()
	ebbtest.Eventually(t, "running", func() bool { return b.state(job) == "running" })
	code, _, errOut = b.run("pause", job)
	require.Equal(t, 0, code, errOut)
	ebbtest.Eventually(t, "paused", func() bool { return b.state(job) == "paused" })
	code, _, errOut = b.run("resume", job)
	require.Equal(t, 0, code, errOut)
	ebbtest.Eventually(t, "running again", func() bool { return b.state(job) == "running" })

	code, out, errOut := b.run("status", job, "--watch", "--interval", "200ms")
	require.Equal(t, 0, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Greater(t, len(lines), 1, "a line per poll:\n%s", out)
	require.Contains(t, lines[len(lines)-1], job+" done: ranges 3/3, rows 25000/")
	require.Contains(t, lines[len(lines)-1], "(100.0%)")
	require.Contains(t, out, "rows/s now")
	require.Equal(t, "done", b.state(job))
}

// status returns one job's status --json as a map.
func (b *bundle) status(job string) map[string]any {
	b.t.Helper()
	code, out, errOut := b.run("status", job, "--json")
	require.Equal(b.t, 0, code, errOut)
	var m map[string]any
	require.NoError(b.t, json.Unmarshal([]byte(out), &m), out)
	return m
}

// verifyJSON runs verify --json and returns its exit code and report.
func (b *bundle) verifyJSON(job string) (int, map[string]any) {
	b.t.Helper()
	code, out, errOut := b.run("verify", job, "--json")
	var m map[string]any
	require.NoError(b.t, json.Unmarshal([]byte(out), &m), "stdout: %s\nstderr: %s", out, errOut)
	return code, m
}

// TestVerifyExitCodes: operators and scripts read verify's exit code and
// its JSON "ok", so both must flip when a finished job's table no longer
// matches (a row corrupted, a row pending again), not only the library call.
func TestVerifyExitCodes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	job := "verify-" + ebbtest.Suffix()
	code, _, errOut := b.run("start", "-job", b.ordersJob(job, "check: status = 's' || legacy_state\nguard: {rules: []}\n"), "-queue", b.redis.Queue)
	require.Equal(t, 0, code, errOut)
	b.worker()
	ebbtest.Eventually(t, "done", func() bool { return b.state(job) == "done" })

	code, out, errOut := b.run("verify", job)
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", out, errOut)
	require.Contains(t, out, "verify "+job+" on ")
	require.Contains(t, out, ": OK (")
	code, r := b.verifyJSON(job)
	require.Equal(t, 0, code)
	require.Equal(t, true, r["ok"], r)

	orders := b.db.Table("orders")
	b.db.Exec(t, "UPDATE "+orders+" SET status = 'corrupt' WHERE id = 1") // first key of the oldest range: always sampled
	b.db.Exec(t, "UPDATE "+orders+" SET status = NULL WHERE id = 17777")  // pending again in a range marked done
	code, out, errOut = b.run("verify", job)
	require.Equal(t, 1, code, "stdout: %s\nstderr: %s", out, errOut)
	require.Contains(t, out, "PROBLEMS FOUND")
	require.NotContains(t, errOut, "verify found problems", "the report on stdout says what is wrong; stderr does not repeat it")
	require.Contains(t, errOut, "verify: 3/3 ranges, 25000 rows read, 2 wrong so far", "stderr shows the walk's progress")
	code, r = b.verifyJSON(job)
	require.Equal(t, 1, code)
	require.Equal(t, false, r["ok"], r)
	require.Equal(t, []any{17777.0}, r["pending_keys"])
	require.Contains(t, r["mismatches"], 1.0)

	// repair reopens the range holding the pending row, and names the
	// corrupted row it cannot fix (not pending): exit 1.
	code, out, errOut = b.run("repair", job)
	require.Equal(t, 1, code, "stdout: %s\nstderr: %s", out, errOut)
	require.Contains(t, out, "reopened and enqueued ranges [1]")
	require.Contains(t, out, "ranges [0] not reopened: redoing them would change nothing")
	require.Contains(t, out, "1 rows fail the check \"status = 's' || legacy_state\" without matching the pending predicate")
	ebbtest.Eventually(t, "repaired", func() bool {
		return b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE id = 17777 AND status IS NOT NULL") == 1
	})
}

// TestStartDryRunFlag: --dry-run on the command line must make the same dry
// run as dry_run: true in the job file; a flag that was parsed and dropped
// would write every row of a table the operator only meant to rehearse on.
func TestStartDryRunFlag(t *testing.T) {
	t.Parallel()
	b := setup(t)
	job := "dry-" + ebbtest.Suffix()
	file := b.ordersJob(job, "guard: {rules: []}\n")
	code, out, errOut := b.run("start", "-job", file, "--dry-run", "-queue", b.redis.Queue)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "dry run: every batch rolls back")
	require.Equal(t, true, b.status(job)["dry_run"])

	b.worker()
	ebbtest.Eventually(t, "done", func() bool { return b.state(job) == "done" })
	s := b.status(job)
	require.Equal(t, true, s["dry_run"])
	require.EqualValues(t, 25000, s["rows_done"], "rows counts what a real run would write")
	require.Zero(t, b.db.Count(t, "SELECT count(*) FROM "+b.db.Table("orders")+" WHERE status IS NOT NULL"), "a dry run changed rows")
}

// TestResumeOverridesGuard: resume of a job the guard holds says so and
// names the rule (the job stays paused); resume --override-guard runs it
// anyway, recorded with who and until when, and the job completes.
func TestResumeOverridesGuard(t *testing.T) {
	t.Parallel()
	b := setup(t)
	job := "ovr-" + ebbtest.Suffix()
	file := b.ordersJob(job, "guard:\n  check_every: 1s\n  rules:\n    - {name: always-busy, sql: 'SELECT 100', slow_above: 10, pause_above: 50, clear_below: 1}\n")
	code, _, errOut := b.run("start", "-job", file, "-queue", b.redis.Queue)
	require.Equal(t, 0, code, errOut)
	b.worker()
	ebbtest.Eventually(t, "the guard pauses the job", func() bool {
		r, _ := b.status(job)["pause_reason"].(string)
		return strings.Contains(r, "always-busy")
	})

	code, out, errOut := b.run("resume", job)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "but the job stays paused: the guard holds the job paused: ")
	require.Contains(t, out, "always-busy")
	require.Contains(t, out, "--override-guard")
	require.Equal(t, "paused", b.state(job))

	code, _, errOut = b.run("resume", job, "--override-guard", "--for", "25h")
	require.Equal(t, 2, code, "more than a day is refused: %s", errOut)
	code, out, errOut = b.run("resume", job, "--override-guard", "--for", "10m")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "the guard is overridden until ")
	ebbtest.Eventually(t, "the job done despite its guard", func() bool { return b.state(job) == "done" })

	s := b.status(job)
	o, _ := s["guard_override"].(map[string]any)
	require.NotNil(t, o, "status shows the override")
	require.Contains(t, o["by"], "via enqueuer")
	until, err := time.Parse(time.RFC3339, o["until"].(string))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(10*time.Minute), until, time.Minute)
	audit, _ := s["audit"].([]any)
	require.NotEmpty(t, audit)
	require.Equal(t, "override-guard", audit[0].(map[string]any)["action"])

	code, _, errOut = b.run("resume", job, "--end-override")
	require.Equal(t, 0, code, errOut)
	require.Nil(t, b.status(job)["guard_override"])
}
