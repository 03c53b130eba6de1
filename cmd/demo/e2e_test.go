package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/child"
	"github.com/ebbhq/ebb/internal/ebbtest"
)

// TestDemoEndToEnd runs the demo the way `make demo` does, on a small table
// in a database of its own: it builds the real worker and enqueuer, and
// asserts that the backfill completed under a pause and resume, that
// enqueuer verify passed, that every row holds its value, and that cleanup
// left nothing of the job in Redis.
func TestDemoEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	binDir := buildEbb(t)
	dbName := "ebbtest_demo_" + ebbtest.Suffix()
	t.Cleanup(func() { dropDatabase(t, dbName) })
	rdb := ebbtest.Redis(t)
	environ := os.Environ()
	for k, v := range map[string]string{
		"DATABASE_URL": ebbtest.DatabaseURL(), "REDIS_URL": ebbtest.RedisURL(),
		// The test's own key prefix, and the test's Redis, never an
		// embedded one a developer's shell may ask for.
		"EBB_PREFIX": rdb.Prefix, "EBB_EMBEDDED_REDIS": "",
	} {
		environ = child.SetEnv(environ, k, v)
	}
	// 60,000 rows take the fleet at least 3 s at the job's rate: the 1 s
	// status polls see it running past 20 % and pause it.
	const rows = 60_000
	cfg := config{
		binDir: binDir, rows: rows, dbName: dbName, workers: 2, concurrency: 1,
		trafficWorkers: 2, think: 5 * time.Millisecond, baseline: 300 * time.Millisecond,
		timeout: ebbtest.WaitTimeout, readyTimeout: 30 * time.Second, stopGrace: 45 * time.Second,
		pauseAt: 20, pauseFor: time.Second,
	}
	var out bytes.Buffer
	err := run(ctx, cfg, environ, &out, ebbtest.Logger(t))
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatalf("demo: %v", err)
	}

	transcript := out.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^\$ enqueuer start -job \S+ -queue demo-[0-9a-f]{6}$`),
		regexp.MustCompile(`(?m)^\$ enqueuer pause demo-orders-[0-9a-f]{6}$`),
		regexp.MustCompile(`(?m)^\$ enqueuer resume demo-orders-[0-9a-f]{6}$`),
		regexp.MustCompile(`(?m)^  verify demo-orders-[0-9a-f]{6} on public\.demo_orders: OK`),
		regexp.MustCompile(`(?m)^\$ enqueuer cleanup demo-orders-[0-9a-f]{6}$`),
		regexp.MustCompile(`(?m)^job:      done in \S+: 60000 rows written`),
		regexp.MustCompile(`(?m)^pause:    held \S+ by enqueuer pause`),
		regexp.MustCompile(`(?m)^OK$`),
	} {
		if !want.MatchString(transcript) {
			t.Errorf("transcript lacks %s", want)
		}
	}

	pool, err := pgxpool.New(ctx, mustWithDatabase(t, ebbtest.DatabaseURL(), dbName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if c := countRows(t, pool, demoTable()); c != (rowCounts{Total: rows}) {
		t.Fatalf("table after the demo: %+v, want %d rows, none pending or wrong", c, rows)
	}

	var left []string
	for _, pattern := range []string{rdb.Prefix + "*", "rate:" + rdb.Prefix + "*"} {
		iter := rdb.Client.Scan(ctx, 0, pattern, 500).Iterator()
		for iter.Next(ctx) {
			left = append(left, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if len(left) > 0 {
		t.Errorf("cleanup left ebb keys: %v", left)
	}
	queue := regexp.MustCompile(`queue (demo-[0-9a-f]{6})`).FindStringSubmatch(transcript)
	if queue == nil {
		t.Fatal("transcript names no queue")
	}
	opt, err := asynq.ParseRedisURI(ebbtest.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	in := asynq.NewInspector(opt)
	t.Cleanup(func() { in.Close() })
	if queues, err := in.Queues(); err != nil || slices.Contains(queues, queue[1]) {
		t.Errorf("asynq queues after cleanup: %v, %v; want no %s", queues, err, queue[1])
	}
}

// buildEbb builds the worker and enqueuer commands into a temp dir, as
// `make build` builds them into bin/.
func buildEbb(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	// The go running this test is on PATH under make; fall back to the
	// standard install for a bare `go test` from an IDE.
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(goBin, "build", "-o", dir+string(filepath.Separator), "../worker", "../enqueuer")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// dropDatabase drops the database the test's demo created.
func dropDatabase(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, ebbtest.DatabaseURL())
	if err != nil {
		t.Errorf("drop database %s: %v", name, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Errorf("drop database %s: %v", name, err)
	}
}

func mustWithDatabase(t *testing.T, dsn, name string) string {
	t.Helper()
	u, err := withDatabase(dsn, name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
