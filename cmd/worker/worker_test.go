package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/jobspec"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// workerBinary builds this command once per test run: crash and signal
// tests need a real process to kill.
func workerBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ebb-worker-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "worker")
		// The go that runs this test is on PATH under make; fall back to the
		// standard install for a bare `go test` from an IDE.
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = "/usr/local/go/bin/go"
		}
		out, err := exec.Command(goBin, "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan struct{}
	err    error
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.Write(b)
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// spawn runs the worker binary with env; it is killed at cleanup if alive.
func spawn(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(workerBinary(t), args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = p
	p.cmd.Stdout = p
	require.NoError(t, p.cmd.Start())
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("worker %d log:\n%s", p.cmd.Process.Pid, p.log())
		}
	})
	return p
}

func (p *proc) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(ebbtest.WaitTimeout):
		t.Fatalf("worker %d did not exit", p.cmd.Process.Pid)
		return nil
	}
}

type bundle struct {
	db    *ebbtest.DB
	redis *ebbtest.RedisEnv
	ctl   *control.Control
	job   string
	env   []string
	// spec is the job as started, for a test that starts it again.
	spec *jobspec.Spec
}

func setup(t *testing.T, rows int, extra string) *bundle {
	t.Helper()
	return setupTable(t, ordersDDL(rows), "id", extra)
}

// ordersDDL creates the orders table of setup with rows rows.
func ordersDDL(rows int) string {
	return fmt.Sprintf(`CREATE TABLE %%[1]s (id bigint PRIMARY KEY, legacy_state int NOT NULL, status text, hits int NOT NULL DEFAULT 0, overlap boolean);
		INSERT INTO %%[1]s (id, legacy_state) SELECT g, g %%%% 5 FROM generate_series(1, %d) g`, rows)
}

// setupTable creates orders with ddl (the table is %[1]s; it needs
// legacy_state, status and hits), starts a job keyed by key on it.
func setupTable(t *testing.T, ddl, key, extra string) *bundle {
	t.Helper()
	return setupOn(t, ebbtest.DatabaseURL(), ddl, key, extra)
}

// setupOn is setupTable in the database dsn names.
func setupOn(t *testing.T, dsn, ddl, key, extra string) *bundle {
	t.Helper()
	return setupServers(t, dsn, ebbtest.RedisURL(), ddl, key, extra)
}

// setupServers is setupTable on the database dsn and the Redis redisURL
// name.
func setupServers(t *testing.T, dsn, redisURL, ddl, key, extra string) *bundle {
	t.Helper()
	b := &bundle{db: ebbtest.SchemaOn(t, dsn), redis: ebbtest.RedisOn(t, redisURL), job: "job-" + ebbtest.Suffix()}
	b.ctl = control.New(b.redis.Client, b.redis.Prefix, ebbtest.Logger(t))
	t.Cleanup(func() { _ = b.ctl.Close() })
	orders := b.db.Table("orders")
	b.db.Exec(t, fmt.Sprintf(ddl, orders))
	b.db.Exec(t, "ANALYZE "+orders)
	spec, err := jobspec.Parse([]byte(fmt.Sprintf(`name: %s
table: %s
key: %s
pending: status IS NULL
%s
%s
database_env: EBB_TEST_DSN
%s`, b.job, orders, key, setLine(extra), readLine(extra), strings.ReplaceAll(extra, "ORDERS", orders))))
	require.NoError(t, err)
	b.spec = spec
	b.env = []string{"REDIS_URL=" + redisURL, "EBB_PREFIX=" + b.redis.Prefix, "EBB_TEST_DSN=" + dsn, "DATABASE_URL="}
	_, err = b.ctl.Start(context.Background(), b.db.Pool, spec, b.redis.Queue)
	require.NoError(t, err)
	return b
}

// setLine is the job's set, unless extra brings its own.
func setLine(extra string) string {
	if strings.Contains(extra, "set:") || strings.Contains(extra, "sql:") {
		return ""
	}
	return "set: hits = hits + 1, status = 's' || legacy_state"
}

// readLine is the job's read_batch, unless extra brings its own.
func readLine(extra string) string {
	if strings.Contains(extra, "read_batch:") {
		return ""
	}
	return "read_batch: 500"
}

func (b *bundle) worker(t *testing.T) *proc {
	return spawn(t, b.env, "-queue", b.redis.Queue, "-metrics-addr", "127.0.0.1:0", "-shutdown-timeout", "10s")
}

func (b *bundle) status(t *testing.T) *control.Status {
	s, err := b.ctl.Status(context.Background(), b.job)
	require.NoError(t, err)
	return s
}

// assertExactlyOnce: no row pending, every row written exactly once.
func (b *bundle) assertExactlyOnce(t *testing.T) {
	t.Helper()
	orders := b.db.Table("orders")
	require.Zero(t, b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE status IS NULL"), "rows skipped")
	require.Zero(t, b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE hits <> 1"), "rows written more than once")
}

// TestCrash: kill -9 a worker mid-job; with another worker started the job
// completes and every row was written exactly once.
func TestCrash(t *testing.T) {
	t.Parallel()
	b := setup(t, 40_000, "task_span: 10000\nbatch: 100\nsleep: 20ms\n")
	victim := b.worker(t)
	ebbtest.Eventually(t, "the victim committed batches", func() bool {
		return strings.Contains(victim.log(), "range start") && b.status(t).Batches >= 5
	})
	survivor := b.worker(t)
	require.NoError(t, victim.cmd.Process.Signal(syscall.SIGKILL))
	_ = victim.wait(t)
	// The victim's range comes back once asynq sees its lease expired.
	replacement := b.worker(t)
	ebbtest.Eventually(t, "job done", func() bool { return b.status(t).State == control.StateDone })
	b.assertExactlyOnce(t)
	_, _ = survivor, replacement
}

// TestCrashShapes: kill -9 a worker mid-range on tables keyed by a
// composite key with a skewed tenant, a timestamp with thousands of ties
// (walked with its primary key as tie-breaker), a random uuid and a text
// key under an ICU collation: each resumes strictly after the last
// committed key, and every row is written exactly once.
func TestCrashShapes(t *testing.T) {
	t.Parallel()
	const cols = "legacy_state int NOT NULL, status text, hits int NOT NULL DEFAULT 0"
	for _, tc := range []struct{ name, ddl, key string }{
		{"composite", `CREATE TABLE %[1]s (tenant_id int, id bigint, ` + cols + `, PRIMARY KEY (tenant_id, id));
			INSERT INTO %[1]s (tenant_id, id, legacy_state) SELECT CASE WHEN g %% 10 = 0 THEN g %% 7 ELSE 3 END, g, g %% 5 FROM generate_series(1, 20000) g`, "[tenant_id, id]"},
		{"timestamptz ties", `CREATE TABLE %[1]s (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, ` + cols + `);
			CREATE INDEX ON %[1]s (created_at, id);
			INSERT INTO %[1]s (id, created_at, legacy_state) SELECT g, timestamptz '2024-05-01 00:00:00.5+02' + (g / 5000) * interval '1 hour', g %% 5 FROM generate_series(1, 20000) g`, "created_at"},
		{"uuid", `CREATE TABLE %[1]s (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), ` + cols + `);
			INSERT INTO %[1]s (legacy_state) SELECT g %% 5 FROM generate_series(1, 20000) g`, "id"},
		{"text", `CREATE TABLE %[1]s (id text COLLATE "en-US-x-icu" PRIMARY KEY, ` + cols + `);
			INSERT INTO %[1]s (id, legacy_state) SELECT p || '-' || g, g %% 5 FROM unnest(ARRAY['Äpfel', 'apfel', 'Zoë', 'ñandú']) p, generate_series(1, 5000) g`, "id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupTable(t, tc.ddl, tc.key, "task_span: 10000\nbatch: 100\nsleep: 20ms\n")
			victim := b.worker(t)
			ebbtest.Eventually(t, "the victim committed batches", func() bool {
				return strings.Contains(victim.log(), "range start") && b.status(t).Batches >= 5
			})
			require.NoError(t, victim.cmd.Process.Signal(syscall.SIGKILL))
			_ = victim.wait(t)
			b.worker(t)
			ebbtest.Eventually(t, "job done", func() bool { return b.status(t).State == control.StateDone })
			b.assertExactlyOnce(t)
		})
	}
}

// TestSIGTERM: a worker told to stop finishes its batch, checkpoints, exits 0
// and its range completes on another worker.
func TestSIGTERM(t *testing.T) {
	t.Parallel()
	b := setup(t, 20_000, "task_span: 20000\nbatch: 100\nsleep: 20ms\n")
	w := b.worker(t)
	ebbtest.Eventually(t, "batches committed", func() bool { return b.status(t).Batches >= 3 })

	// While it works, its endpoints answer and its metrics count the job.
	addr := metricsAddr(t, w)
	for _, path := range []string{"/healthz", "/readyz"} {
		code, _ := get(t, "http://"+addr+path)
		require.Equal(t, http.StatusOK, code, path)
	}
	_, metrics := get(t, "http://"+addr+"/metrics")
	require.Regexp(t, `ebb_rows_total\{backfill="`+b.job+`"\} [1-9]`, metrics)
	require.Contains(t, metrics, `ebb_batches_total{backfill="`+b.job+`",outcome="committed"}`)
	require.Contains(t, metrics, `ebb_batch_duration_seconds_bucket{backfill="`+b.job+`"`)

	require.NoError(t, w.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, w.wait(t), "worker must exit 0 on SIGTERM")
	require.Contains(t, w.log(), "range handed back")
	s := b.status(t)
	require.Zero(t, s.RangesDone)
	require.Less(t, s.RowsDone, int64(20_000))
	b.worker(t)
	ebbtest.Eventually(t, "job done", func() bool { return b.status(t).State == control.StateDone })
	b.assertExactlyOnce(t)
}

var listenRE = regexp.MustCompile(`msg="metrics listening" addr=(\S+)`)

// metricsAddr reads the address the worker bound for -metrics-addr :0.
func metricsAddr(t *testing.T, p *proc) string {
	t.Helper()
	var addr string
	ebbtest.Eventually(t, "metrics address logged", func() bool {
		m := listenRE.FindStringSubmatch(p.log())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	return addr
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// TestUnreachable: a worker that cannot reach Redis or PostgreSQL exits
// non-zero with a clear message that never shows the password.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"redis", []string{"REDIS_URL=redis://:s3cret@127.0.0.1:1/0", "DATABASE_URL="}, "cannot reach Redis at redis://127.0.0.1:1/0"},
		{"postgres", []string{"REDIS_URL=" + ebbtest.RedisURL(), "DATABASE_URL=postgres://u:s3cret@127.0.0.1:1/db"}, "cannot reach PostgreSQL at postgres://127.0.0.1:1/db"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := spawn(t, tc.env, "-metrics-addr", "")
			err := p.wait(t)
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit)
			require.Equal(t, 1, exit.ExitCode())
			require.Contains(t, p.log(), tc.want)
			require.NotContains(t, p.log(), "s3cret")
			require.NotContains(t, p.log(), "panic")
		})
	}
}
