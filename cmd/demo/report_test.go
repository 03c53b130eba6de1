package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestJobLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		o    outcome
		want []string
	}{
		{
			name: "rate leaves the pause and the pickup out",
			o: outcome{final: jobStatus{State: "done", RowsDone: 1000, RangesTotal: 4, RangesDone: 4},
				elapsed: 15 * time.Second, held: 3 * time.Second, pickup: 2 * time.Second},
			want: []string{"done in 15s:", "1000 rows written", "100 rows/s while writing", "ranges 4/4 done, 0 failed"},
		},
		{
			name: "failed, no pause",
			o:    outcome{final: jobStatus{State: "failed", RowsDone: 50, RangesTotal: 4, RangesDone: 3, RangesFailed: 1}, elapsed: 5 * time.Second},
			want: []string{"failed in 5s:", "10 rows/s", "ranges 3/4 done, 1 failed"},
		},
		{name: "zero elapsed", o: outcome{final: jobStatus{State: "done"}}, want: []string{" 0 rows/s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := jobLine(tc.o)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("jobLine = %q, lacks %q", got, w)
				}
			}
		})
	}
}

func TestPauseLine(t *testing.T) {
	t.Parallel()
	if got := pauseLine(outcome{}); got != "" {
		t.Fatalf("pauseLine without a pause = %q, want empty", got)
	}
	got := pauseLine(outcome{held: 3 * time.Second, pickup: 6 * time.Second})
	for _, w := range []string{"held 3s by enqueuer pause", "again 6s after enqueuer resume"} {
		if !strings.Contains(got, w) {
			t.Errorf("pauseLine = %q, lacks %q", got, w)
		}
	}
}

func TestVerifyTimeoutGrowsWithRows(t *testing.T) {
	t.Parallel()
	small, big := verifyTimeout(1000), verifyTimeout(1_000_000)
	// verify reads 1M rows at jobRate in 50 s; the bound must leave room.
	if small < toolTimeout || big < toolTimeout+time.Duration(1_000_000/jobRate)*time.Second {
		t.Fatalf("verifyTimeout(1000) = %s, (1M) = %s", small, big)
	}
}

// TestVerifyExitCodeDecides: the demo's verdict is enqueuer verify's exit
// code, shown with its report; a job that did not end done is not verified.
func TestVerifyExitCodeDecides(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	fakeEnqueuer := func(name, script string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name    string
		state   string
		script  string
		wantErr string
		wantOut string
	}{
		{name: "passes", state: "done", script: `echo "verify $2: OK"`, wantOut: "verify j: OK"},
		{name: "exit 1 fails", state: "done", script: `echo "verify $2: PROBLEMS FOUND"; exit 1`,
			wantErr: "verify job j", wantOut: "PROBLEMS FOUND"},
		{name: "failed job is not verified", state: "failed", script: `echo must not run; exit 1`,
			wantErr: "ended failed with 2 failed ranges"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			d := &demo{cfg: config{rows: 10}, out: &out}
			r := &jobRun{job: "j", logDir: dir, enq: &enqueuer{bin: fakeEnqueuer(tc.name, tc.script), out: &out}}
			err := d.verify(ctx, r, outcome{final: jobStatus{State: tc.state, RangesFailed: 2}})
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("verify = %v, want error %q", err, tc.wantErr)
			}
			if !strings.Contains(out.String(), tc.wantOut) || strings.Contains(out.String(), "must not run") {
				t.Fatalf("output %q, want it to show %q", out.String(), tc.wantOut)
			}
		})
	}
}
