package child

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ebbhq/ebb/internal/clock"
	"github.com/ebbhq/ebb/internal/ebbtest"
)

// waitTimeout bounds every wait on a condition in these tests.
var waitTimeout = ebbtest.WaitTimeout

func TestSetEnv(t *testing.T) {
	t.Parallel()
	in := []string{"A=1", "DATABASE_URL=old", "B=2", "DATABASE_URL=older", "NOEQUALS"}
	got := SetEnv(in, "DATABASE_URL", "new")
	want := []string{"A=1", "B=2", "NOEQUALS", "DATABASE_URL=new"}
	if !slices.Equal(got, want) {
		t.Fatalf("SetEnv = %q, want %q", got, want)
	}
	if in[1] != "DATABASE_URL=old" {
		t.Fatalf("SetEnv modified its input")
	}
}

func TestGetenv(t *testing.T) {
	t.Parallel()
	env := []string{"A=1", "REDIS_URL=first", "EMPTY=", "REDIS_URL=last", "NOEQUALS"}
	for key, want := range map[string]string{"REDIS_URL": "last", "A": "1", "EMPTY": "", "NOEQUALS": "", "MISSING": ""} {
		if got := Getenv(env, key); got != want {
			t.Errorf("Getenv(%s) = %q, want %q", key, got, want)
		}
	}
}

func TestLastLines(t *testing.T) {
	t.Parallel()
	if got := lastLines("a\nb\nc\n", 2); got != "b\nc" {
		t.Fatalf("lastLines = %q", got)
	}
	if got := lastLines("a", 5); got != "a" {
		t.Fatalf("lastLines = %q", got)
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	out, err := Run(ctx, waitTimeout, "/bin/sh", []string{"-c", `echo "$CHILD_X"; echo note >&2`}, []string{"CHILD_X=hello"})
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "hello\nnote\n" {
		t.Fatalf("stdout+stderr = %q", out)
	}
	_, err = Run(ctx, waitTimeout, "/bin/sh", []string{"-c", "echo why it failed >&2; exit 3"}, nil)
	if err == nil || !strings.Contains(err.Error(), "why it failed") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("err = %v, want the exit status and stderr", err)
	}
}

func TestProcessStopGraceful(t *testing.T) {
	t.Parallel()
	logPath := filepath.Join(t.TempDir(), "child.log")
	// Exits on SIGTERM after saying so, like a worker's graceful shutdown,
	// but leaves a helper behind in its group, which must die with it.
	script := `trap 'echo got TERM; exit 0' TERM; sleep 1000 & echo "started $!"; while :; do sleep 0.01; done`
	p, err := Start("graceful", "/bin/sh", []string{"-c", script}, nil, logPath)
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, logPath, "started")
	if done, _ := p.Exited(); done {
		t.Fatal("child exited before stop")
	}
	if err := p.Stop(waitTimeout); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if !strings.Contains(Tail(logPath, 5), "got TERM") {
		t.Fatalf("child did not see SIGTERM; log:\n%s", Tail(logPath, 5))
	}
	if err := p.Stop(waitTimeout); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	waitHelperDead(t, logPath)
}

func TestProcessStopKillsStubbornGroup(t *testing.T) {
	t.Parallel()
	logPath := filepath.Join(t.TempDir(), "child.log")
	// It also leaves a helper behind in its group, which must die with it.
	script := `trap '' TERM; sleep 1000 & echo "started $!"; while :; do sleep 0.01; done`
	p, err := Start("stubborn", "/bin/sh", []string{"-c", script}, nil, logPath)
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, logPath, "started")
	err = p.Stop(50 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("stop = %v, want a killed error", err)
	}
	if done, _ := p.Exited(); !done {
		t.Fatal("child still running after stop")
	}
	waitHelperDead(t, logPath)
}

// waitHelperDead reads the pid a test child logged as "started PID" and
// waits until that process is gone.
func waitHelperDead(t *testing.T, logPath string) {
	t.Helper()
	var helper int
	if _, err := fmt.Sscanf(strings.TrimSpace(firstLine(Tail(logPath, 5))), "started %d", &helper); err != nil {
		t.Fatalf("helper pid in %q: %v", Tail(logPath, 5), err)
	}
	deadline := time.Now().Add(waitTimeout)
	for processAlive(helper) {
		if time.Now().After(deadline) {
			t.Fatalf("helper %d of the stopped child still alive after %s", helper, waitTimeout)
		}
		if err := clock.Sleep(context.Background(), 5*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
}

// processAlive reports whether pid runs. A zombie counts as dead: in a
// container whose pid 1 does not reap, a killed orphan stays one.
func processAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses: "pid (comm) S ...".
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// waitLog polls the child's log until it contains s, so the test signals the
// child only after its trap is installed.
func waitLog(t *testing.T, path, s string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(Tail(path, 5), s) {
		if time.Now().After(deadline) {
			t.Fatalf("%q not in %s after %s", s, path, waitTimeout)
		}
		if err := clock.Sleep(context.Background(), 5*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
}

// firstLine returns the first line of s, trimmed: the helper's "started
// PID" line comes before anything else the test child logs.
func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
