package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/throwaway"
)

// TestReadmeWalkthrough runs the README's "Your first real job" commands
// as written, in bash, against a database holding an orders table and a
// Redis of the test's own. Only what points at servers changes: the
// export lines get the test's URLs, and make build becomes the binaries
// this test built.
func TestReadmeWalkthrough(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- walkthrough:begin -->\n```sh\n(.*?)```\n<!-- walkthrough:end -->").FindSubmatch(raw)
	if m == nil {
		t.Fatal("README.md has no walkthrough block between its markers")
	}
	script := string(m[1])
	db, dbURL := ebbtest.Database(t)
	if _, err := db.Pool.Exec(context.Background(), `CREATE TABLE public.orders (id bigint PRIMARY KEY, status text);
		INSERT INTO public.orders SELECT g, NULL FROM generate_series(1, 20000) g`); err != nil {
		t.Fatal(err)
	}
	rs := ebbtest.ThrowawayRedis(t, throwaway.RedisOptions{})
	for _, r := range []struct{ old, new string }{
		{"make build\n", ":\n"},
		{"export DATABASE_URL='postgres://postgres@127.0.0.1:5432/shop'", "export DATABASE_URL='" + dbURL + "'"},
		{"export REDIS_URL='redis://127.0.0.1:6379/0'", "export REDIS_URL='" + rs.URL + "'"},
	} {
		if !strings.Contains(script, r.old) {
			t.Fatalf("the walkthrough no longer has %q; update this test with it", r.old)
		}
		script = strings.Replace(script, r.old, r.new, 1)
	}
	dir := t.TempDir()
	if err := os.Symlink(buildEbb(t), filepath.Join(dir, "bin")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ebbtest.WaitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script+"\nwait\n")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "EBB_PREFIX=", "EBB_SIGNING_KEY=")
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	logs := ""
	for _, f := range []string{"worker-1.log", "worker-2.log"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		logs += fmt.Sprintf("\n--- %s\n%s", f, b)
	}
	if err != nil {
		t.Fatalf("the walkthrough failed: %v\n%s%s", err, out, logs)
	}
	for _, want := range []string{"orders-status done: ranges 1/1", "verify orders-status on public.orders: OK", "job orders-status cleaned up"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the walkthrough's output lacks %q:\n%s%s", want, out, logs)
		}
	}
	var left int64
	if err := db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM public.orders WHERE status IS DISTINCT FROM 'done'").Scan(&left); err != nil || left != 0 {
		t.Errorf("%d rows not done (%v)", left, err)
	}
}
