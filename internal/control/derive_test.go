package control

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/pause"
)

// TestDeriveStatus: the state, pause reason, limits and guard view status
// derives from a snapshot, one rule per case.
func TestDeriveStatus(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	now := created.Add(100 * time.Second)
	plain := &jobspec.Spec{Rate: 100, MaxWorkers: 4}
	guarded := &jobspec.Spec{Rate: 100, MaxWorkers: 4, Guard: jobspec.Guard{
		CheckEvery: jobspec.Duration(time.Second), Rules: []jobspec.Rule{{Name: "lock_waits"}},
	}}
	decision := func(state guard.State, expires time.Time, reasons ...string) []byte {
		b, err := json.Marshal(guard.Decision{State: state, Factor: 0.5, Leader: "w1", At: expires.Add(-time.Second), Expires: expires, Reasons: reasons})
		require.NoError(t, err)
		return b
	}
	ten := 10.0
	type want struct {
		state, reason   string
		rate            float64
		maxWorkers      int
		overrides       map[string]string
		guardState      string
		guardStale      bool
		finished        bool
		eta, progress   float64
		expectedRowsMin int64
	}
	tests := []struct {
		name string
		edit func(*statusSnapshot)
		want want
	}{
		{name: "queued", want: want{state: StateQueued, rate: 100, maxWorkers: 4, eta: 100 * 6 / 4, progress: 0.4, expectedRowsMin: 10_000}},
		{name: "running", edit: func(s *statusSnapshot) { s.ledger.Alive = true },
			want: want{state: StateRunning, rate: 100, maxWorkers: 4, eta: 150, progress: 0.4, expectedRowsMin: 10_000}},
		{name: "global switch", edit: func(s *statusSnapshot) { s.ledger.Alive, s.ledger.Pause.Global = true, "1" },
			want: want{state: StatePaused, reason: pause.FlagReason("ebb:pause", "1"), rate: 100, maxWorkers: 4, eta: 150, progress: 0.4, expectedRowsMin: 10_000}},
		{name: "job switch says who", edit: func(s *statusSnapshot) { s.ledger.Pause.Job = pause.FlagValue("alice", created) },
			want: want{state: StatePaused, reason: pause.FlagReason("ebb:{j}:pause", pause.FlagValue("alice", created)), rate: 100, maxWorkers: 4, eta: 150, progress: 0.4, expectedRowsMin: 10_000}},
		{name: "switch off", edit: func(s *statusSnapshot) { s.ledger.Pause.Job = "0" },
			want: want{state: StateQueued, rate: 100, maxWorkers: 4, eta: 150, progress: 0.4, expectedRowsMin: 10_000}},
		{name: "queue paused", edit: func(s *statusSnapshot) { s.ledger.Pause.QueuePaused = true },
			want: want{state: StatePaused, reason: `asynq queue "ebb" is paused`, rate: 100, maxWorkers: 4, eta: 150, progress: 0.4, expectedRowsMin: 10_000}},
		{name: "bad override", edit: func(s *statusSnapshot) { s.overridesErr = errors.New("rate=x is not a number") },
			want: want{state: StatePaused, reason: "bad live override, fix it with enqueuer set: rate=x is not a number", rate: 100, maxWorkers: 4,
				overrides: map[string]string{"error": "rate=x is not a number"}, eta: 150, progress: 0.4, expectedRowsMin: 10_000}},
		{name: "overrides win", edit: func(s *statusSnapshot) {
			s.overrides = ledger.Overrides{Rate: &ten, MaxWorkers: new(int)}
		}, want: want{state: StateQueued, rate: 10, maxWorkers: 0, overrides: map[string]string{ledger.OverrideRate: "10", ledger.OverrideMaxWorkers: "0"},
			eta: 150, progress: 0.4, expectedRowsMin: 1000}},
		{name: "no spec: no limits, no guard", edit: func(s *statusSnapshot) { s.spec = nil },
			want: want{state: StateQueued, eta: 150, progress: 0.4}},
		{name: "guard pauses", edit: func(s *statusSnapshot) {
			s.spec, s.decision = guarded, decision(guard.StatePause, s.redisNow.Add(time.Second), "lock_waits 30 > 20", "replica lag")
		}, want: want{state: StatePaused, reason: "guard: lock_waits 30 > 20; replica lag", rate: 100, maxWorkers: 4, guardState: "pause",
			eta: 150, progress: 0.4, expectedRowsMin: 10_000}},
		{name: "guard slows, fresh", edit: func(s *statusSnapshot) {
			s.spec, s.decision = guarded, decision(guard.StateSlow, s.redisNow.Add(time.Second))
		}, want: want{state: StateQueued, rate: 100, maxWorkers: 4, guardState: "slow", eta: 150, progress: 0.4, expectedRowsMin: 10_000}},
		{name: "decision stale within the lease", edit: func(s *statusSnapshot) {
			s.spec, s.decision = guarded, decision(guard.StateRun, s.redisNow.Add(-time.Second))
		}, want: want{state: StateQueued, rate: 100, maxWorkers: 4, guardState: "run", guardStale: true, eta: 150, progress: 0.4, expectedRowsMin: 10_000}},
		{name: "decision older than the lease", edit: func(s *statusSnapshot) {
			s.spec, s.decision = guarded, decision(guard.StateRun, s.redisNow.Add(-time.Hour))
		}, want: want{state: StatePaused, reason: pause.NoDecisionReason(time.Hour),
			rate: 100, maxWorkers: 4, guardState: "run", guardStale: true, eta: 150, progress: 0.4, expectedRowsMin: 10_000}},
		{name: "no decision yet", edit: func(s *statusSnapshot) { s.spec = guarded },
			want: want{state: StateQueued, rate: 100, maxWorkers: 4, guardState: "none", guardStale: true, eta: 150, progress: 0.4, expectedRowsMin: 10_000}},
		{name: "failed", edit: func(s *statusSnapshot) {
			s.ledger.RangesDone, s.ledger.Pause.Global = 8, "1"
			s.ledger.Failed = []ledger.Failure{{Range: 3, Reason: "boom"}, {Range: 7, Reason: "boom"}}
		}, want: want{state: StateFailed, rate: 100, maxWorkers: 4, eta: 100 * 2 / 8.0, progress: 0.8, expectedRowsMin: 10_000}},
		{name: "done: switches are no alarm, the rate stops at the finish", edit: func(s *statusSnapshot) {
			s.ledger.RangesDone, s.ledger.Pause.Job, s.ledger.Meta.Finished = 10, "1", created.Add(50*time.Second)
			s.spec, s.decision = guarded, decision(guard.StatePause, s.redisNow.Add(-time.Hour), "stale")
		}, want: want{state: StateDone, rate: 100, maxWorkers: 4, finished: true, eta: 0, progress: 1}},
		{name: "paused an hour: the ETA and the pace leave the hour out", edit: func(s *statusSnapshot) {
			s.redisNow = created.Add(time.Hour + 100*time.Second)
			s.paused = []span{{from: created.Add(10 * time.Second), to: created.Add(10*time.Second + time.Hour)}}
		}, want: want{state: StateQueued, rate: 100, maxWorkers: 4, eta: 150, progress: 0.4, expectedRowsMin: 10_000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			snap := statusSnapshot{
				job: "j", spec: plain, redisNow: now, globalPauseKey: "ebb:pause", jobPauseKey: "ebb:{j}:pause",
				ledger: ledger.Snapshot{Meta: ledger.Meta{Queue: "ebb", Ranges: 10, Created: created}, RangesDone: 4, Rows: 400},
			}
			if tc.edit != nil {
				tc.edit(&snap)
			}
			s := deriveStatus(snap, snap.redisNow)
			w := tc.want
			require.Equal(t, w.state, s.State)
			require.Equal(t, w.reason, s.PauseReason)
			require.Equal(t, w.rate, s.Rate)
			require.Equal(t, w.maxWorkers, s.MaxWorkers)
			require.Equal(t, w.overrides, s.Overrides)
			if w.guardState == "" {
				require.Nil(t, s.Guard)
			} else {
				require.NotNil(t, s.Guard)
				require.Equal(t, w.guardState, s.Guard.State)
				require.Equal(t, w.guardStale, s.Guard.Stale)
			}
			require.Equal(t, w.finished, s.Finished != nil)
			require.InDelta(t, w.eta, s.ETASeconds, 1e-9)
			require.InDelta(t, w.progress, s.Progress, 1e-9)
			require.Equal(t, w.expectedRowsMin, s.ExpectedRows)
			require.Equal(t, "j", s.Job)
			require.Equal(t, int64(len(snap.ledger.Failed)), s.RangesFailed)
		})
	}
}

// TestDeriveAutoRate: status shows rate: auto's current rate and its last
// step, the start rate before any decision, and an operator's rate instead
// once one is set; a moving rate sets no pace to compare with.
func TestDeriveAutoRate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 3, 3, 12, 0, 0, time.UTC)
	spec := &jobspec.Spec{AutoRate: true, RateStart: 1000, RateMax: 50000, Objective: &jobspec.Objective{Signal: "checkout_p95", Max: jobspec.Rel(1.5)},
		Guard: jobspec.Guard{CheckEvery: jobspec.Duration(time.Second), Rules: []jobspec.Rule{{Name: jobspec.ObjectiveRule}}}}
	d, err := json.Marshal(guard.Decision{State: guard.StateRun, Factor: 1, GuardFactor: 1, At: now, Expires: now.Add(time.Minute),
		Auto: &guard.AutoState{Rate: 5600, Ceiling: 8000, Why: "cut x0.7: objective 9 above its max 5"}})
	require.NoError(t, err)
	snap := func(decision []byte, overrides ledger.Overrides) statusSnapshot {
		return statusSnapshot{
			job: "j", spec: spec, redisNow: now, decision: decision, overrides: overrides,
			ledger: ledger.Snapshot{Meta: ledger.Meta{Queue: "ebb", Ranges: 10, Created: now.Add(-time.Hour)}, RangesDone: 4, Rows: 400},
		}
	}

	s := deriveStatus(snap(d, ledger.Overrides{}), now)
	require.NotNil(t, s.Auto)
	require.Equal(t, 5600.0, s.Rate)
	require.Equal(t, 8000.0, s.Auto.Ceiling)
	require.Contains(t, s.Auto.Why, "objective 9 above its max 5")
	require.Zero(t, s.ExpectedRows, "a moving rate sets no pace")

	s = deriveStatus(snap(nil, ledger.Overrides{}), now)
	require.Equal(t, 1000.0, s.Rate, "before the first decision: rate_start")
	require.Contains(t, s.Auto.Why, "starting at rate_start")

	operator := 300.0
	s = deriveStatus(snap(d, ledger.Overrides{Rate: &operator}), now)
	require.Nil(t, s.Auto, "an operator's rate replaces the controller's")
	require.Equal(t, 300.0, s.Rate)
}

// TestPausedWithin: pause spans from the operator's actions and the
// guard's history overlap; the paused time is their union inside the
// job's life, an open one running to now.
func TestPausedWithin(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	audit := []AuditEntry{ // newest first, as the list keeps them
		{At: at(100), Action: ActionPause},
		{At: at(40), Action: ActionResume},
		{At: at(10), Action: ActionSet},
		{At: at(10), Action: ActionPause},
	}
	changes := []guard.Change{
		{At: at(50), State: guard.StateRun},
		{At: at(30), State: guard.StatePause},
		{At: at(20), State: guard.StateSlow},
	}
	spans := append(auditSpans(audit), guardSpans(changes)...)
	// [10,40] ∪ [30,50] = 40 s, and [100, now=120] = 20 s.
	require.Equal(t, 60*time.Second, pausedWithin(spans, t0, at(120)))
	require.Equal(t, 35*time.Second, pausedWithin(spans, at(15), at(50)), "clipped to the window")
}

// TestRowsPerSecNow: "rows/s now" is the rate the guard's leader measured
// over its last check, shown while its decision is fresh and not at all
// once it is stale (a page must not show an old rate as current).
func TestRowsPerSecNow(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	guarded := &jobspec.Spec{Guard: jobspec.Guard{CheckEvery: jobspec.Duration(time.Second), Rules: []jobspec.Rule{{Name: "lock_waits"}}}}
	for _, tc := range []struct {
		expires time.Time
		want    *float64
	}{{now.Add(time.Second), ptrTo(1234.5)}, {now.Add(-time.Second), nil}} {
		b, err := json.Marshal(guard.Decision{State: guard.StateRun, Factor: 1, Expires: tc.expires, RowsPerSec: 1234.5})
		require.NoError(t, err)
		s := deriveStatus(statusSnapshot{job: "j", spec: guarded, redisNow: now, decision: b,
			ledger: ledger.Snapshot{Meta: ledger.Meta{Ranges: 2, Created: now.Add(-time.Minute)}}}, now)
		require.Equal(t, tc.want, s.RowsPerSecNow)
	}
}

func ptrTo(v float64) *float64 { return &v }
