package guard_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/probe"
)

// step is one check: the reading of the rule named "r" at t seconds, and
// the state the guard must be in afterwards.
type step struct {
	t    int
	val  float64
	err  bool
	want guard.State
}

func runSteps(t *testing.T, rule jobspec.Rule, baseline map[string]float64, steps []step) *guard.Evaluator {
	t.Helper()
	rule.Name = "r"
	e := guard.NewEvaluator([]jobspec.Rule{rule}, 5*time.Second, 30*time.Second, nil)
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for _, s := range steps {
		rd := probe.Reading{Value: s.val}
		if s.err {
			rd = probe.Reading{Err: errors.New("probe failed")}
		}
		v := e.Step(t0.Add(time.Duration(s.t)*time.Second), map[string]probe.Reading{"r": rd}, baseline)
		require.Equal(t, s.want, v.State, "at t=%ds value %v: reasons %v", s.t, s.val, v.Reasons)
		if s.want != guard.StateRun {
			require.NotEmpty(t, v.Reasons, "a slow or pause names its reason")
		}
	}
	return e
}

func secs(d int) jobspec.Duration { return jobspec.Duration(time.Duration(d) * time.Second) }

func TestRuleFor(t *testing.T) {
	t.Parallel()
	rule := jobspec.Rule{Signal: "lock_waits", PauseAbove: jobspec.Abs(5), ClearBelow: jobspec.Abs(2), For: secs(30)}
	runSteps(t, rule, nil, []step{
		{0, 1, false, guard.StateRun},
		{5, 9, false, guard.StateRun},    // over, but not for 30 s yet
		{20, 9, false, guard.StateRun},   // 15 s
		{25, 3, false, guard.StateRun},   // dipped: the clock restarts
		{30, 9, false, guard.StateRun},   // over again from t=30
		{55, 9, false, guard.StateRun},   // 25 s
		{60, 9, false, guard.StatePause}, // 30 s: pause
		{65, 4, false, guard.StatePause}, // below the limit, above clear: hysteresis keeps it
		{70, 1, false, guard.StatePause}, // cleared: hold 30 s starts
		{95, 1, false, guard.StatePause}, // still holding
		{100, 1, false, guard.StateRun},  // hold over
	})
}

func TestRuleHoldDoubles(t *testing.T) {
	t.Parallel()
	rule := jobspec.Rule{Signal: "lock_waits", PauseAbove: jobspec.Abs(5), ClearBelow: jobspec.Abs(2)}
	e := runSteps(t, rule, nil, []step{
		{0, 9, false, guard.StatePause},   // fires (for: 0)
		{5, 0, false, guard.StatePause},   // cleared, hold 30 s
		{35, 0, false, guard.StateRun},    // released
		{40, 9, false, guard.StatePause},  // fires again within the hour
		{45, 0, false, guard.StatePause},  // hold 60 s now
		{100, 0, false, guard.StatePause}, // 55 s: still held
		{105, 0, false, guard.StateRun},
		{110, 9, false, guard.StatePause}, // third time: 120 s
		{115, 0, false, guard.StatePause},
		{230, 0, false, guard.StatePause},
		{235, 0, false, guard.StateRun},
	})
	require.Equal(t, 120*time.Second, e.States()["r"].Hold)

	// The hold never exceeds ten minutes, and a rule quiet for an hour
	// starts again at 30 s.
	e = guard.NewEvaluator([]jobspec.Rule{{Name: "r", Signal: "lock_waits", PauseAbove: jobspec.Abs(5), ClearBelow: jobspec.Abs(2)}}, 5*time.Second, 30*time.Second, nil)
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	read := func(v float64) guard.State {
		return e.Step(now, map[string]probe.Reading{"r": {Value: v}}, nil).State
	}
	for range 8 {
		require.Equal(t, guard.StatePause, read(9))
		now = now.Add(time.Second)
		require.Equal(t, guard.StatePause, read(0))
		now = now.Add(guard.MaxHold)
		require.Equal(t, guard.StateRun, read(0))
	}
	require.Equal(t, guard.MaxHold, e.States()["r"].Hold)
	now = now.Add(2 * time.Hour)
	read(9)
	require.Equal(t, 30*time.Second, e.States()["r"].Hold)
}

func TestRuleSlowAndPause(t *testing.T) {
	t.Parallel()
	rule := jobspec.Rule{Signal: "replication_lag_seconds", SlowAbove: jobspec.Abs(2), PauseAbove: jobspec.Abs(10), ClearBelow: jobspec.Abs(1), For: secs(10)}
	runSteps(t, rule, nil, []step{
		{0, 0.5, false, guard.StateRun},
		{5, 3, false, guard.StateRun},
		{15, 3, false, guard.StateSlow},   // over slow for 10 s
		{20, 1.5, false, guard.StateSlow}, // between clear and slow: stays slow
		{25, 12, false, guard.StateSlow},  // over pause, not for 10 s yet
		{35, 12, false, guard.StatePause},
		{40, 0.5, false, guard.StatePause}, // cleared: hold
		{70, 0.5, false, guard.StateRun},
	})
}

func TestRuleBaseline(t *testing.T) {
	t.Parallel()
	rule := jobspec.Rule{Prometheus: "q", SlowAbove: jobspec.Rel(1.2), PauseAbove: jobspec.Rel(1.5), ClearBelow: jobspec.Rel(1.1), For: secs(10)}
	base := map[string]float64{"r": 0.2}
	runSteps(t, rule, base, []step{
		{0, 0.21, false, guard.StateRun}, // 1.05x
		{5, 0.26, false, guard.StateRun}, // 1.3x: over slow
		{15, 0.26, false, guard.StateSlow},
		{20, 0.31, false, guard.StateSlow}, // 1.55x: over pause
		{30, 0.31, false, guard.StatePause},
		{35, 0.21, false, guard.StatePause}, // cleared: hold
		{65, 0.21, false, guard.StateRun},
	})
	// Without a baseline a relative rule cannot judge: it is blind.
	runSteps(t, rule, nil, []step{{0, 0.1, false, guard.StateSlow}})
}

func TestRuleBlind(t *testing.T) {
	t.Parallel()
	rule := jobspec.Rule{Signal: "lock_waits", PauseAbove: jobspec.Abs(5), ClearBelow: jobspec.Abs(2)}
	runSteps(t, rule, nil, []step{
		{0, 0, false, guard.StateRun},
		{5, 0, true, guard.StateSlow},   // an erroring probe is never green
		{15, 0, true, guard.StateSlow},  // blind 10 s
		{20, 0, true, guard.StatePause}, // blind 3 checks: pause
		{25, 0, false, guard.StateRun},  // sight back, value fine
	})
	// A pause that fired before the probe failed survives the blindness.
	runSteps(t, rule, nil, []step{
		{0, 9, false, guard.StatePause},
		{5, 3, true, guard.StatePause},
		{10, 4, false, guard.StatePause}, // not cleared yet
		{15, 0, false, guard.StatePause}, // cleared: hold
		{45, 0, false, guard.StateRun},
	})
}

func TestEvaluatorResumesFromStates(t *testing.T) {
	t.Parallel()
	rule := jobspec.Rule{Name: "r", Signal: "lock_waits", PauseAbove: jobspec.Abs(5), ClearBelow: jobspec.Abs(2), For: secs(30)}
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	a := guard.NewEvaluator([]jobspec.Rule{rule}, 5*time.Second, 0, nil)
	a.Step(t0, map[string]probe.Reading{"r": {Value: 9}}, nil)
	// The leader dies; its successor resumes from the stored memory, so the
	// 30 s already over the limit count.
	b := guard.NewEvaluator([]jobspec.Rule{rule}, 5*time.Second, 0, a.States())
	v := b.Step(t0.Add(30*time.Second), map[string]probe.Reading{"r": {Value: 9}}, nil)
	require.Equal(t, guard.StatePause, v.State)
	require.Equal(t, guard.DefaultHold, b.States()["r"].Hold)
}

func TestFollower(t *testing.T) {
	t.Parallel()
	spec, err := jobspec.Parse([]byte("name: j\ntable: t\nkey: id\npending: p\nset: s\nrate: 1000\nbatch: {size: 500, min: 50}\n"))
	require.NoError(t, err)
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	every := spec.Guard.CheckEvery.D()
	decision := func(d guard.Decision) []byte {
		d.Expires = d.At.Add(guard.DecisionTTL(every))
		b, err := jsonMarshal(d)
		require.NoError(t, err)
		return b
	}
	tests := []struct {
		name  string
		c     func() (ledgerControls, time.Time)
		check func(t *testing.T, l guard.Limits)
	}{
		{"fresh run", func() (ledgerControls, time.Time) {
			return ledgerControls{Decision: decision(guard.Decision{State: guard.StateRun, Factor: 1, GuardFactor: 1, At: now})}, now
		}, func(t *testing.T, l guard.Limits) {
			require.False(t, l.Paused)
			require.Equal(t, 1000.0, l.Rate)
			require.True(t, l.Green)
		}},
		{"slow halves the rate", func() (ledgerControls, time.Time) {
			return ledgerControls{Decision: decision(guard.Decision{State: guard.StateSlow, Factor: 0.5, GuardFactor: 0.5, At: now, Reasons: []string{"lag"}})}, now
		}, func(t *testing.T, l guard.Limits) {
			require.Equal(t, 500.0, l.Rate)
			require.False(t, l.Green, "no growth while slowed")
			require.Contains(t, l.Reason, "lag")
		}},
		{"pause", func() (ledgerControls, time.Time) {
			return ledgerControls{Decision: decision(guard.Decision{State: guard.StatePause, At: now, Reasons: []string{"lock_waits=9 above pause limit 5"}})}, now
		}, func(t *testing.T, l guard.Limits) {
			require.True(t, l.Paused)
			require.Contains(t, l.Reason, "lock_waits=9")
		}},
		{"stale slows to the minimum", func() (ledgerControls, time.Time) {
			return ledgerControls{Decision: decision(guard.Decision{State: guard.StateRun, Factor: 1, At: now})}, now.Add(guard.DecisionTTL(every) + time.Second)
		}, func(t *testing.T, l guard.Limits) {
			require.False(t, l.Paused)
			require.True(t, l.Stale)
			require.Equal(t, 50, l.BatchMax)
			require.Less(t, l.Rate, 1000.0)
			require.GreaterOrEqual(t, l.Sleep, time.Second)
		}},
		{"stale for a lease pauses", func() (ledgerControls, time.Time) {
			return ledgerControls{Decision: decision(guard.Decision{State: guard.StateRun, Factor: 1, At: now})}, now.Add(guard.DecisionTTL(every) + guard.LeaseTTL(every))
		}, func(t *testing.T, l guard.Limits) {
			require.True(t, l.Paused)
			require.Contains(t, l.Reason, "no fresh decision")
		}},
		{"overrides win over the job file", func() (ledgerControls, time.Time) {
			r, w, b, s := 200.0, 2, 100, 50*time.Millisecond
			c := ledgerControls{Decision: decision(guard.Decision{State: guard.StateRun, Factor: 1, GuardFactor: 1, At: now})}
			c.Overrides.Rate, c.Overrides.MaxWorkers, c.Overrides.BatchMax, c.Overrides.Sleep = &r, &w, &b, &s
			return c, now
		}, func(t *testing.T, l guard.Limits) {
			require.Equal(t, 200.0, l.Rate)
			require.Equal(t, 2, l.MaxWorkers)
			require.Equal(t, 100, l.BatchMax)
			require.Equal(t, 50*time.Millisecond, l.Sleep)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, at := tc.c()
			tc.check(t, guard.NewFollower().Limits(spec, c, at))
		})
	}

	// check_every: 1s, and the next check's probe took its whole timeout:
	// the decision is published about every + tick + probe timeout after the
	// last one, and the last one must still be fresh then.
	fast, err := jobspec.Parse([]byte("name: j\ntable: t\nkey: id\npending: p\nset: s\nrate: 1000\nguard: {check_every: 1s}\n"))
	require.NoError(t, err)
	fastEvery := fast.Guard.CheckEvery.D()
	slowProbe := guard.Decision{State: guard.StateRun, Factor: 1, GuardFactor: 1, At: now,
		Expires: now.Add(guard.DecisionTTL(fastEvery))}
	b, err := jsonMarshal(slowProbe)
	require.NoError(t, err)
	late := now.Add(fastEvery + time.Second + probe.DefaultProbeTimeout - time.Millisecond)
	l := guard.NewFollower().Limits(fast, ledgerControls{Decision: b}, late)
	require.False(t, l.Stale, "a decision must outlive one check whose probe ran to its timeout")
	require.True(t, l.Green)

	// Never a decision: no batch before the guard's first look.
	l = guard.NewFollower().Limits(spec, ledgerControls{}, now)
	require.True(t, l.Paused)
	require.True(t, l.Waiting)
	require.Contains(t, l.Reason, "first decision")

	// A job with every rule turned off and no schedule needs no leader.
	off, err := jobspec.Parse([]byte("name: j\ntable: t\nkey: id\npending: p\nset: s\nguard: {rules: []}\n"))
	require.NoError(t, err)
	l = guard.NewFollower().Limits(off, ledgerControls{}, now)
	require.False(t, l.Stale)
	require.False(t, l.Paused)
	require.True(t, l.Green, "an unwatched job's batch sizer may grow")
}
