package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSetEnv(t *testing.T) {
	t.Parallel()
	in := []string{"A=1", "DATABASE_URL=old", "B=2", "DATABASE_URL=older", "NOEQUALS"}
	got := setEnv(in, "DATABASE_URL", "new")
	want := []string{"A=1", "B=2", "NOEQUALS", "DATABASE_URL=new"}
	if !slices.Equal(got, want) {
		t.Fatalf("setEnv = %q, want %q", got, want)
	}
	if in[1] != "DATABASE_URL=old" {
		t.Fatalf("setEnv modified its input")
	}
}

func TestGetenv(t *testing.T) {
	t.Parallel()
	env := []string{"A=1", "REDIS_URL=first", "EMPTY=", "REDIS_URL=last", "NOEQUALS"}
	for key, want := range map[string]string{"REDIS_URL": "last", "A": "1", "EMPTY": "", "NOEQUALS": "", "MISSING": ""} {
		if got := getenv(env, key); got != want {
			t.Errorf("getenv(%s) = %q, want %q", key, got, want)
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

func TestRunTool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	out, err := runTool(ctx, waitTimeout, "/bin/sh", []string{"-c", `echo "$DEMO_X"; echo note >&2`}, []string{"DEMO_X=hello"})
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "hello\nnote\n" {
		t.Fatalf("stdout+stderr = %q", out)
	}
	_, err = runTool(ctx, waitTimeout, "/bin/sh", []string{"-c", "echo why it failed >&2; exit 3"}, nil)
	if err == nil || !strings.Contains(err.Error(), "why it failed") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("err = %v, want the exit status and stderr", err)
	}
}

func TestChildStopGraceful(t *testing.T) {
	t.Parallel()
	logPath := filepath.Join(t.TempDir(), "child.log")
	// Exits on SIGTERM after saying so, like a worker's graceful shutdown,
	// but leaves a helper behind in its group, which must die with it.
	script := `trap 'echo got TERM; exit 0' TERM; sleep 1000 & echo "started $!"; while :; do sleep 0.01; done`
	c, err := startChild("graceful", "/bin/sh", []string{"-c", script}, nil, logPath)
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, logPath, "started")
	if done, _ := c.exited(); done {
		t.Fatal("child exited before stop")
	}
	if err := c.stop(waitTimeout); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if !strings.Contains(tailFile(logPath, 5), "got TERM") {
		t.Fatalf("child did not see SIGTERM; log:\n%s", tailFile(logPath, 5))
	}
	if err := c.stop(waitTimeout); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	waitHelperDead(t, logPath)
}

func TestChildStopKillsStubbornGroup(t *testing.T) {
	t.Parallel()
	logPath := filepath.Join(t.TempDir(), "child.log")
	// It also leaves a helper behind in its group, which must die with it.
	script := `trap '' TERM; sleep 1000 & echo "started $!"; while :; do sleep 0.01; done`
	c, err := startChild("stubborn", "/bin/sh", []string{"-c", script}, nil, logPath)
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, logPath, "started")
	err = c.stop(50 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("stop = %v, want a killed error", err)
	}
	if done, _ := c.exited(); !done {
		t.Fatal("child still running after stop")
	}
	waitHelperDead(t, logPath)
}

// waitHelperDead reads the pid a test child logged as "started PID" and
// waits until that process is gone.
func waitHelperDead(t *testing.T, logPath string) {
	t.Helper()
	var helper int
	if _, err := fmt.Sscanf(strings.TrimSpace(firstLine(tailFile(logPath, 5))), "started %d", &helper); err != nil {
		t.Fatalf("helper pid in %q: %v", tailFile(logPath, 5), err)
	}
	deadline := time.Now().Add(waitTimeout)
	for processAlive(helper) {
		if time.Now().After(deadline) {
			t.Fatalf("helper %d of the stopped child still alive after %s", helper, waitTimeout)
		}
		if err := waitFor(context.Background(), 5*time.Millisecond); err != nil {
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
	for !strings.Contains(tailFile(path, 5), s) {
		if time.Now().After(deadline) {
			t.Fatalf("%q not in %s after %s", s, path, waitTimeout)
		}
		if err := waitFor(context.Background(), 5*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
}
