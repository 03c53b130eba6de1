package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/ebbhq/ebb/internal/child"
	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/dial"
	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/throwaway"
	"github.com/ebbhq/ebb/internal/ui"
)

// TestSecretsAndTLS runs a whole job the way an operator does, with the
// real enqueuer and worker binaries, against a PostgreSQL that wants a
// password over TLS (sslmode=verify-full, a CA made for this test) and a
// Redis that speaks only TLS (rediss://, REDIS_CA_FILE) to an ACL user with
// a password. Then it greps everything ebb wrote or said for either
// password: every command's output and errors (a wrong password
// included), the worker's log and /metrics, status, the runbook, the
// on-call page's API and Asynqmon's, and every key in Redis.
func TestSecretsAndTLS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const pgPassword, redisPassword = "pg-Secr3t-7f3a", "redis-Secr3t-9c1e"
	ca, err := throwaway.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pg := ebbtest.ThrowawayPostgres(t, throwaway.PostgresOptions{Password: pgPassword, TLS: &ca})
	rs := ebbtest.ThrowawayRedis(t, throwaway.RedisOptions{User: "ebb", Password: redisPassword, TLS: &ca})
	binDir := buildEbb(t)
	dir := t.TempDir()

	conn, err := pgx.Connect(ctx, pg.URL)
	if err != nil {
		t.Fatalf("connect over TLS with the test CA: %v", err)
	}
	defer conn.Close(ctx)
	var ssl bool
	if err := conn.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
		t.Fatalf("the connection is not TLS: %v %v", ssl, err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE orders (id bigint PRIMARY KEY, status text);
		INSERT INTO orders SELECT g, NULL FROM generate_series(1, 20000) g`); err != nil {
		t.Fatal(err)
	}
	jobFile := filepath.Join(dir, "job.yaml")
	if err := os.WriteFile(jobFile, []byte("name: secrets\ntable: public.orders\nkey: id\npending: status IS NULL\nset: status = 'done'\ntask_span: 5000\nsleep: 0s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := os.Environ()
	for k, v := range map[string]string{
		"DATABASE_URL": pg.URL, "REDIS_URL": rs.URL, dial.RedisCAEnv: ca.CAFile,
		"EBB_PREFIX": "secrets:", "EBB_EMBEDDED_REDIS": "",
	} {
		env = child.SetEnv(env, k, v)
	}
	var seen strings.Builder
	enqueuer := func(wantOK bool, env []string, args ...string) string {
		t.Helper()
		out, err := child.Run(ctx, time.Minute, filepath.Join(binDir, "enqueuer"), args, env)
		text := string(out)
		if err != nil {
			text += "\n" + err.Error()
		}
		seen.WriteString(text)
		if wantOK && err != nil {
			t.Fatalf("enqueuer %v: %v\n%s", args, err, out)
		}
		if !wantOK && err == nil {
			t.Fatalf("enqueuer %v succeeded; want it refused", args)
		}
		return text
	}

	enqueuer(true, env, "plan", "-job", jobFile, "--runbook")
	enqueuer(true, env, "start", "-job", jobFile)
	worker, err := child.Start("worker", filepath.Join(binDir, "worker"), []string{"-metrics-addr", "127.0.0.1:0"}, env, filepath.Join(dir, "worker.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = worker.Stop(10 * time.Second) })
	ebbtest.Eventually(t, "the job done over TLS", func() bool {
		return strings.Contains(enqueuer(true, env, "status", "secrets"), "secrets: done")
	})
	enqueuer(true, env, "status", "secrets", "--json")
	enqueuer(true, env, "verify", "secrets")
	enqueuer(false, env, "pause", "secrets") // refused: the job is done
	enqueuer(true, env, "resume", "secrets")
	enqueuer(true, env, "set", "secrets", "--rate", "100")

	// Wrong passwords and a missing CA are refused, without echoing what
	// was given.
	for _, bad := range [][2]string{
		{"REDIS_URL", strings.Replace(rs.URL, redisPassword, redisPassword+"x", 1)},
		{"DATABASE_URL", strings.Replace(pg.URL, pgPassword, pgPassword+"x", 1)},
		{dial.RedisCAEnv, ""},
	} {
		enqueuer(false, child.SetEnv(env, bad[0], bad[1]), "start", "-job", jobFile)
	}

	// The worker's /metrics.
	logText, _ := os.ReadFile(worker.LogPath())
	addr := metricsAddrOf(string(logText))
	if addr == "" {
		t.Fatalf("no metrics address in the worker's log:\n%s", logText)
	}
	seen.WriteString(get(t, "http://"+addr+"/metrics"))

	// The on-call page and Asynqmon, on the same TLS Redis.
	rdb, err := dial.Redis(ctx, rs.URL, ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctl := control.New(rdb, "secrets:", ebbtest.Logger(t))
	defer ctl.Close()
	h, err := ui.New(ctl, ui.Config{Monitor: ui.ConnOpt(rdb.Options()), Logger: ebbtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	page := httptest.NewServer(h)
	defer page.Close()
	for _, path := range []string{"/api/jobs", "/api/jobs/secrets", "/api/jobs/secrets/history", "/api/info", "/monitoring/api/queues", "/monitoring/api/redis_info"} {
		seen.WriteString(get(t, page.URL+path))
	}

	// Every key in Redis, whatever its type.
	seen.WriteString(dumpRedis(t, rdb))
	_ = worker.Stop(10 * time.Second)
	logText, _ = os.ReadFile(worker.LogPath())
	seen.WriteString(string(logText))

	all := seen.String()
	for _, secret := range []string{pgPassword, redisPassword} {
		if i := strings.Index(all, secret); i >= 0 {
			t.Fatalf("password %q found in what ebb wrote: …%s…", secret, all[max(0, i-200):min(len(all), i+100)])
		}
	}
	for _, want := range []string{"secrets: done", "verify secrets on public.orders: OK", "redis_version"} {
		if !strings.Contains(all, want) {
			t.Errorf("expected %q in the collected output", want)
		}
	}
	t.Logf("grepped %d bytes of output, logs, metrics, page answers and Redis for both passwords: none found", len(all))
}

// metricsAddrOf finds the address a worker logged for -metrics-addr :0.
func metricsAddrOf(log string) string {
	i := strings.Index(log, `msg="metrics listening" addr=`)
	if i < 0 {
		return ""
	}
	rest := log[i+len(`msg="metrics listening" addr=`):]
	if j := strings.IndexAny(rest, " \n"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

func get(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, res.StatusCode, b)
	}
	return string(b)
}

// dumpRedis renders every key and value on rdb as text.
func dumpRedis(t *testing.T, rdb *redis.Client) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	iter := rdb.Scan(ctx, 0, "*", 500).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		typ, _ := rdb.Type(ctx, key).Result()
		var val any
		switch typ {
		case "string":
			val, _ = rdb.Get(ctx, key).Result()
		case "hash":
			val, _ = rdb.HGetAll(ctx, key).Result()
		case "list":
			val, _ = rdb.LRange(ctx, key, 0, -1).Result()
		case "set":
			val, _ = rdb.SMembers(ctx, key).Result()
		case "zset":
			val, _ = rdb.ZRangeWithScores(ctx, key, 0, -1).Result()
		}
		fmt.Fprintf(&b, "%s (%s) = %v\n", key, typ, val)
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
