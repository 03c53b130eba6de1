package main

import (
	"strings"
	"testing"
	"time"
)

// TestPauserPausesOnceThenResumes walks one pauser through a job's samples:
// it pauses the first time a running job reaches the threshold, resumes
// after the hold, and never again.
func TestPauserPausesOnceThenResumes(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &pauser{atPercent: 30, hold: 3 * time.Second}
	steps := []struct {
		name   string
		state  string
		pct    float64
		after  time.Duration
		want   string
		paused time.Duration
	}{
		{name: "queued at the threshold waits for running", state: "queued", pct: 35, after: 0},
		{name: "running below the threshold", state: "running", pct: 29.9, after: time.Second},
		{name: "running at the threshold pauses", state: "running", pct: 30, after: 2 * time.Second, want: cmdPause},
		{name: "paused within the hold", state: "paused", pct: 31, after: 4 * time.Second, paused: 2 * time.Second},
		{name: "hold over resumes", state: "paused", pct: 31, after: 5 * time.Second, want: cmdResume, paused: 3 * time.Second},
		{name: "running again never pauses twice", state: "running", pct: 60, after: 7 * time.Second, paused: 3 * time.Second},
	}
	for _, st := range steps {
		now := t0.Add(st.after)
		if got := p.next(jobStatus{State: st.state}, st.pct, now); got != st.want {
			t.Fatalf("%s: next = %q, want %q", st.name, got, st.want)
		}
		if got := p.pausedFor(now); got != st.paused {
			t.Fatalf("%s: pausedFor = %s, want %s", st.name, got, st.paused)
		}
	}
}

func TestPauserOff(t *testing.T) {
	t.Parallel()
	p := &pauser{atPercent: 0, hold: time.Second}
	now := time.Now()
	for i := range 3 {
		if got := p.next(jobStatus{State: "running"}, 50, now.Add(time.Duration(i)*time.Second)); got != "" {
			t.Fatalf("disabled pauser asked for %q", got)
		}
	}
	if p.pausedFor(now) != 0 {
		t.Fatal("disabled pauser reports a pause")
	}
}

func TestJobLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		o    outcome
		want []string
		not  []string
	}{
		{
			name: "rate leaves the pause out",
			o: outcome{final: jobStatus{State: "done", RowsDone: 1000, RangesTotal: 4, RangesDone: 4},
				elapsed: 13 * time.Second, paused: 3 * time.Second},
			want: []string{"done in 13s (3s of it paused)", "1000 rows written", "100 rows/s while running", "ranges 4/4 done, 0 failed"},
		},
		{
			name: "no pause, no pause note",
			o:    outcome{final: jobStatus{State: "failed", RowsDone: 50, RangesTotal: 4, RangesDone: 3, RangesFailed: 1}, elapsed: 5 * time.Second},
			want: []string{"failed in 5s:", "10 rows/s", "ranges 3/4 done, 1 failed"},
			not:  []string{"paused"},
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
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("jobLine = %q, has %q", got, n)
				}
			}
		})
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
