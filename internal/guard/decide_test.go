package guard_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/guard"
)

// TestDecide: the slow rules' cut halves while a slow verdict holds and
// climbs back ×1.5 after it, a schedule window multiplies it, a x0 window
// pauses, and Base is published only when a job without a rate is cut.
func TestDecide(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		state       guard.State
		factor      float64
		schedule    float64
		window      string
		wantState   guard.State
		wantGuard   float64
		wantFactor  float64
		wantBase    float64
		wantReasons []string
		throttled   bool
	}{
		{name: "run at full speed", state: guard.StateRun, factor: 1, schedule: 1,
			wantState: guard.StateRun, wantGuard: 1, wantFactor: 1},
		{name: "slow halves", state: guard.StateSlow, factor: 1, schedule: 1,
			wantState: guard.StateSlow, wantGuard: 0.5, wantFactor: 0.5, wantBase: 100, throttled: true},
		{name: "slow never cuts below 1/64", state: guard.StateSlow, factor: 1.0 / 64, schedule: 1,
			wantState: guard.StateSlow, wantGuard: 1.0 / 64, wantFactor: 1.0 / 64, wantBase: 100, throttled: true},
		{name: "run restores x1.5 and says so", state: guard.StateRun, factor: 0.5, schedule: 1,
			wantState: guard.StateRun, wantGuard: 0.75, wantFactor: 0.75, wantBase: 100, throttled: true,
			wantReasons: []string{"restoring rate after a slow-down (x0.75)"}},
		{name: "run restores up to 1", state: guard.StateRun, factor: 0.8, schedule: 1,
			wantState: guard.StateRun, wantGuard: 1, wantFactor: 1},
		{name: "pause keeps the cut", state: guard.StatePause, factor: 0.25, schedule: 1,
			wantState: guard.StatePause, wantGuard: 0.25, wantFactor: 0.25, wantBase: 100, throttled: true},
		{name: "x2 window doubles Factor, not the unlimited cut", state: guard.StateRun, factor: 1, schedule: 2, window: "night",
			wantState: guard.StateRun, wantGuard: 1, wantFactor: 2, wantReasons: []string{"schedule window night"}},
		{name: "x2 window does not hide the first slow-down", state: guard.StateSlow, factor: 1, schedule: 2, window: "night",
			wantState: guard.StateSlow, wantGuard: 0.5, wantFactor: 1, wantBase: 100, throttled: true,
			wantReasons: []string{"schedule window night"}},
		{name: "x0.25 window cuts an unlimited job", state: guard.StateRun, factor: 1, schedule: 0.25, window: "lunch",
			wantState: guard.StateRun, wantGuard: 1, wantFactor: 0.25, wantBase: 100, throttled: true,
			wantReasons: []string{"schedule window lunch"}},
		{name: "x0 window pauses", state: guard.StateRun, factor: 1, schedule: 0, window: "peak",
			wantState: guard.StatePause, wantGuard: 1, wantFactor: 0, wantBase: 100, throttled: true,
			wantReasons: []string{"schedule window peak pauses the job"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := guard.Decide(guard.Check{
				Verdict: guard.Verdict{State: tc.state}, GuardFactor: tc.factor, Base: 100,
				Schedule: tc.schedule, Window: tc.window, Leader: "me", Now: now, CheckEvery: 5 * time.Second,
			})
			require.Equal(t, tc.wantState, d.State)
			require.InDelta(t, tc.wantGuard, d.GuardFactor, 1e-12, "GuardFactor")
			require.InDelta(t, tc.wantFactor, d.Factor, 1e-12, "Factor")
			require.Equal(t, tc.wantBase, d.Base, "Base")
			require.Equal(t, tc.wantReasons, d.Reasons)
			require.Equal(t, tc.throttled, d.Throttled(), "Throttled")
			require.Equal(t, "me", d.Leader)
			require.Equal(t, now.Add(guard.DecisionTTL(5*time.Second)), d.Expires)
		})
	}
}
