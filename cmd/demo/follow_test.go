package main

import (
	"testing"
	"time"
)

// TestPauserPausesOnceThenResumes walks one pauser through a job's samples:
// it pauses the first time a running job reaches the threshold, resumes
// after the hold, notes when rows move again, and never pauses twice.
func TestPauserPausesOnceThenResumes(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &pauser{atPercent: 30, hold: 3 * time.Second}
	steps := []struct {
		name         string
		state        string
		rows         int64
		pct          float64
		after        time.Duration
		want         string
		held, pickup time.Duration
	}{
		{name: "queued at the threshold waits for running", state: "queued", pct: 35},
		{name: "running below the threshold", state: "running", rows: 299, pct: 29.9, after: time.Second},
		{name: "running at the threshold pauses", state: "running", rows: 300, pct: 30, after: 2 * time.Second, want: cmdPause},
		{name: "paused within the hold", state: "paused", rows: 310, pct: 31, after: 4 * time.Second, held: 2 * time.Second},
		{name: "hold over resumes", state: "paused", rows: 310, pct: 31, after: 5 * time.Second, want: cmdResume, held: 3 * time.Second},
		{name: "running, no rows yet", state: "running", rows: 310, pct: 31, after: 7 * time.Second, held: 3 * time.Second, pickup: 2 * time.Second},
		{name: "rows move again", state: "running", rows: 400, pct: 40, after: 9 * time.Second, held: 3 * time.Second, pickup: 4 * time.Second},
		{name: "never pauses twice", state: "running", rows: 600, pct: 60, after: 11 * time.Second, held: 3 * time.Second, pickup: 4 * time.Second},
	}
	for _, st := range steps {
		now := t0.Add(st.after)
		if got := p.next(jobStatus{State: st.state, RowsDone: st.rows}, st.pct, now); got != st.want {
			t.Fatalf("%s: next = %q, want %q", st.name, got, st.want)
		}
		if held, pickup := p.stalled(now); held != st.held || pickup != st.pickup {
			t.Fatalf("%s: stalled = %s, %s; want %s, %s", st.name, held, pickup, st.held, st.pickup)
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
	if held, pickup := p.stalled(now); held != 0 || pickup != 0 {
		t.Fatal("disabled pauser reports a pause")
	}
}
