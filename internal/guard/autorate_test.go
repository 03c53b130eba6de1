package guard_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/jobspec"
)

// autoCheck is one rate: auto check: the rules' state, the objective's
// value against max 10, and the fleet's rows/s since the last check.
func autoCheck(prev guard.AutoState, state guard.State, objective *float64, observed float64, now time.Time, max float64) *guard.Decision {
	limit := 10.0
	v := guard.Verdict{State: state, Signals: []guard.SignalView{{Rule: jobspec.ObjectiveRule, Value: objective, Slow: &limit}}}
	return guard.Decide(guard.Check{
		Verdict: v, GuardFactor: 1, Schedule: 1, Now: now, CheckEvery: 5 * time.Second,
		Auto: &guard.AutoSettings{Start: 1000, Max: max}, AutoPrev: prev, Observed: observed,
	})
}

func ptr(v float64) *float64 { return &v }

// TestAutoRateSteps: each branch of the controller, as a user reads it in
// status: doubled while the objective holds with margin, cut to 70 % of
// what the fleet really ran when it is crossed or a slow rule fires, cuts
// spaced three checks apart, additive growth after a cut, and held within
// the margin, under a pause, without a value, at rate_max, or when the
// fleet does not use its rate.
func TestAutoRateSteps(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 3, 3, 12, 0, 0, time.UTC)
	cut := guard.AutoState{Rate: 7000, Ceiling: 10000, CutAt: now.Add(-time.Minute)}
	for _, tc := range []struct {
		name      string
		prev      guard.AutoState
		state     guard.State
		objective *float64
		observed  float64
		max       float64
		want      float64
		ceiling   float64
		why       string
	}{
		{"first check starts at rate_start and doubles", guard.AutoState{}, guard.StateRun, ptr(2), 1000, 0, 2000, 0, "raised"},
		{"slow start doubles", guard.AutoState{Rate: 4000}, guard.StateRun, ptr(2), 3900, 0, 8000, 0, "raised"},
		{"capped at rate_max", guard.AutoState{Rate: 4000}, guard.StateRun, ptr(2), 3900, 5000, 5000, 0, "raised"},
		{"held at rate_max", guard.AutoState{Rate: 5000}, guard.StateRun, ptr(2), 5000, 5000, 5000, 0, "at rate_max"},
		{"objective crossed: cut from what the fleet ran, deeper the further over", guard.AutoState{Rate: 16000}, guard.StateSlow, ptr(12), 10000, 0, 10000 * 0.7 * 10 / 12, 10000, "objective 12 above its max 10"},
		{"far over: cut to half", guard.AutoState{Rate: 10000}, guard.StateSlow, ptr(40), 10000, 0, 5000, 10000, "cut x0.5"},
		{"a crossing right after a raise is cut at once", guard.AutoState{Rate: 8000, ChangedAt: now.Add(-time.Second)}, guard.StateSlow, ptr(11), 8000, 0, 8000 * 0.7 * 10 / 11, 8000, "above its max"},
		{"a raise waits for the last change to show", guard.AutoState{Rate: 4000, ChangedAt: now.Add(-10 * time.Second)}, guard.StateRun, ptr(2), 4000, 0, 4000, 0, "needs 15s to show"},
		{"slow rule without the objective crossed: cut", guard.AutoState{Rate: 10000}, guard.StateSlow, ptr(3), 10000, 0, 7000, 10000, "a slow rule fired"},
		{"a second cut waits three checks", guard.AutoState{Rate: 7000, Ceiling: 10000, CutAt: now.Add(-10 * time.Second)}, guard.StateSlow, ptr(12), 7000, 0, 7000, 10000, "held: cut less than"},
		{"after a cut: additive growth, 5 % of the ceiling", guard.AutoState{Rate: 7000, Ceiling: 10000, CutAt: now.Add(-time.Minute), Good: 8000}, guard.StateRun, ptr(2), 7000, 0, 7500, 10000, "raised"},
		{"a cut before any rate held the objective: slow start goes on", guard.AutoState{Rate: 500, Ceiling: 1000, CutAt: now.Add(-time.Minute)}, guard.StateRun, ptr(2), 500, 0, 1000, 1000, "raised"},
		{"after a cut, far under a rate that held: x1.5", guard.AutoState{Rate: 2000, Ceiling: 3000, CutAt: now.Add(-time.Minute), Good: 9000}, guard.StateRun, ptr(6), 2000, 0, 3000, 3000, "raised"},
		{"within 15 % of max: held", cut, guard.StateRun, ptr(9), 7000, 0, 7000, 10000, "within 15% of its max"},
		{"a pause holds the rate", cut, guard.StatePause, ptr(2), 0, 0, 7000, 10000, "a pause rule holds"},
		{"no value: held", cut, guard.StateRun, nil, 7000, 0, 7000, 10000, "no fresh value"},
		{"the fleet does not use its rate: held", cut, guard.StateRun, ptr(2), 2000, 0, 7000, 10000, "under half of the rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := autoCheck(tc.prev, tc.state, tc.objective, tc.observed, now, tc.max)
			require.NotNil(t, d.Auto)
			require.InDelta(t, tc.want, d.Auto.Rate, 1e-9)
			require.InDelta(t, tc.ceiling, d.Auto.Ceiling, 1e-9)
			require.Contains(t, d.Auto.Why, tc.why)
			require.Equal(t, 1.0, d.GuardFactor, "under rate: auto the slow rules act through the controller, not twice")
		})
	}
}

// The simulated database of the convergence tests: its live p95 rises with
// the backfill's rate, p95 = 2 ms × (1 + (rate/40,000)³), so the objective
// of 1.5× the baseline is crossed at simBest rows/s.
const (
	simBaseline = 2.0
	simCapacity = 40000.0
	simLimit    = 1.5 * simBaseline
)

var simBest = simCapacity * math.Cbrt(0.5)

func simP95(rate float64) float64 { return simBaseline * (1 + math.Pow(rate/simCapacity, 3)) }

// simulate runs the controller for checks 5 s checks from 1,000 rows/s,
// the fleet running at the rate it was given; signal is the objective the
// check i reads, given the p95 the fleet's rates caused so far. It returns
// the rate after each check.
func simulate(checks int, signal func(i int, caused []float64) float64) []float64 {
	now := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	var st guard.AutoState
	rate := 1000.0
	var caused, rates []float64
	limit := simLimit
	for i := range checks {
		caused = append(caused, simP95(rate))
		v := signal(i, caused)
		state := guard.StateRun
		if v > limit {
			state = guard.StateSlow
		}
		d := guard.Decide(guard.Check{
			Verdict:     guard.Verdict{State: state, Signals: []guard.SignalView{{Rule: jobspec.ObjectiveRule, Value: &v, Slow: &limit}}},
			GuardFactor: 1, Schedule: 1, Now: now, CheckEvery: 5 * time.Second,
			Auto: &guard.AutoSettings{Start: 1000}, AutoPrev: st, Observed: rate,
		})
		st = *d.Auto
		rate = st.Rate
		rates = append(rates, rate)
		now = now.Add(5 * time.Second)
	}
	return rates
}

func mean(vs []float64) float64 {
	var m float64
	for _, v := range vs {
		m += v / float64(len(vs))
	}
	return m
}

// TestAutoRateConverges: against the simulated database, whose p95 shows
// only as the mean over the last three checks (a percentile over a window
// lags its cause), the controller climbs from 1,000 rows/s, then holds the
// p95 under the objective on most checks while running at a useful
// fraction of the best rate that meets it, one check at a time.
func TestAutoRateConverges(t *testing.T) {
	t.Parallel()
	rates := simulate(240, func(_ int, caused []float64) float64 { // 20 minutes
		return mean(caused[max(0, len(caused)-3):])
	})
	steady := rates[60:] // after the first five minutes
	over := 0
	for _, r := range steady {
		if simP95(r) > simLimit {
			over++
		}
	}
	m := mean(steady)
	t.Logf("mean %.0f rows/s = %.2f of the best %.0f; objective crossed on %d of %d checks", m, m/simBest, simBest, over, len(steady))
	require.Greater(t, m, 0.7*simBest, "runs at a useful fraction of the best rate that meets the objective (%.0f rows/s)", simBest)
	require.Less(t, m, simBest, "on average under the rate that breaks the objective")
	require.Less(t, float64(over)/float64(len(steady)), 0.25, "the objective holds on most checks")
}

// TestAutoRateRecovers: a burst that has nothing to do with the rate (a
// checkpoint, a vacuum, someone's report) keeps the objective far over its
// max for ten checks, and the controller cuts again and again while it
// lasts. Once it is over, the rate climbs back to a useful fraction of the
// best within five minutes, not a twentieth of a collapsed ceiling a check.
func TestAutoRateRecovers(t *testing.T) {
	t.Parallel()
	rates := simulate(200, func(i int, caused []float64) float64 {
		if i >= 60 && i < 70 {
			return 20 * simBaseline // the burst
		}
		return caused[len(caused)-1]
	})
	m := mean(rates[130:]) // five minutes after the burst
	t.Logf("mean %.0f rows/s = %.2f of the best %.0f, five minutes after the burst", m, m/simBest, simBest)
	require.Greater(t, m, 0.6*simBest)
}
