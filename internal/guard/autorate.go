package guard

import (
	"fmt"
	"time"

	"github.com/ebbhq/ebb/internal/jobspec"
)

// rate: auto steers the fleet's rate the way TCP steers a congestion
// window. While the objective holds with margin the rate doubles each
// check (slow start) until the first cut, then grows by a twentieth of
// the rate that was too much; when the objective is crossed, or any slow
// rule fires (the fleet's own commit times and lock waits among them), it
// is cut to 70 % of what the fleet really ran at. Cuts are spaced by
// autoCooldown checks, since a latency percentile over a window keeps
// showing the overload for a while after the cause is gone. Pause rules
// still pause; the rate waits for them.

// AutoState is the controller's memory, published in every decision so
// the next leader resumes it.
type AutoState struct {
	// Rate is the fleet's rows/s the workers follow.
	Rate float64 `json:"rate"`
	// Ceiling is the rate that was too much at the last cut; 0 before the
	// first cut (slow start).
	Ceiling float64   `json:"ceiling,omitempty"`
	CutAt   time.Time `json:"cut_at,omitzero"`
	// Why is the last step, for status and history.
	Why string `json:"why,omitempty"`
}

// AutoSettings are the job file's rate: auto limits.
type AutoSettings struct {
	Start, Max float64
}

// The controller's constants. autoMargin keeps the objective from being
// run at its very edge, where noise alone would cross it every other check.
const (
	autoCut      = 0.7
	autoMargin   = 0.85
	autoGrowth   = 2.0
	autoStep     = 0.05
	autoCooldown = 3
	autoMinRate  = 1.0
	// autoUnused is how much of its rate the fleet must use before the
	// rate grows: a fleet held back by its own size (or an operator's
	// pause) would otherwise see its rate climb without bound, and the
	// first cut then do nothing.
	autoUnused = 0.5
)

// stepAuto is one check of the controller. verdict is the rules' state;
// objective the objective rule's view (value and resolved max); observed
// the fleet's rows/s since the last check.
func stepAuto(prev AutoState, set AutoSettings, verdict State, objective *SignalView, observed float64, now time.Time, every time.Duration) AutoState {
	s := prev
	s.Why = ""
	if s.Rate <= 0 {
		s.Rate = set.Start
	}
	over, value, limit, known := objectiveState(objective)
	cooling := !s.CutAt.IsZero() && now.Sub(s.CutAt) < autoCooldown*every
	switch {
	case verdict == StatePause:
		s.Why = "held: a pause rule holds the job"
	case verdict == StateSlow || over:
		if cooling {
			s.Why = "held: cut less than " + (autoCooldown * every).String() + " ago, waiting for the signals to show it"
			break
		}
		from := s.Rate
		if observed > 0 && observed < from {
			from = observed
		}
		s.Ceiling, s.CutAt = from, now
		s.Rate = max(from*autoCut, autoMinRate)
		if over {
			s.Why = fmt.Sprintf("cut x%g: objective %.4g above its max %.4g", autoCut, value, limit)
		} else {
			s.Why = fmt.Sprintf("cut x%g: a slow rule fired", autoCut)
		}
	case !known:
		s.Why = "held: the objective has no fresh value"
	case value > autoMargin*limit:
		s.Why = fmt.Sprintf("held: objective %.4g within %.0f%% of its max %.4g", value, (1-autoMargin)*100, limit)
	case observed < autoUnused*s.Rate:
		s.Why = fmt.Sprintf("held: the fleet ran %.0f rows/s, under half of the rate it has", observed)
	case set.Max > 0 && s.Rate >= set.Max:
		s.Rate = set.Max
		s.Why = "held: at rate_max"
	default:
		if s.Ceiling == 0 {
			s.Rate *= autoGrowth
		} else {
			s.Rate += max(autoStep*s.Ceiling, autoMinRate)
		}
		if set.Max > 0 {
			s.Rate = min(s.Rate, set.Max)
		}
		s.Why = fmt.Sprintf("raised: objective %.4g under %.0f%% of its max %.4g", value, autoMargin*100, limit)
	}
	return s
}

// objectiveState reads the objective rule's view: whether it is above its
// max, and both numbers when known.
func objectiveState(v *SignalView) (over bool, value, limit float64, known bool) {
	if v == nil || v.Value == nil || v.Slow == nil {
		return false, 0, 0, false
	}
	return *v.Value > *v.Slow, *v.Value, *v.Slow, true
}

// objectiveView is the objective rule's view among a check's signals.
func objectiveView(signals []SignalView) *SignalView {
	for i := range signals {
		if signals[i].Rule == jobspec.ObjectiveRule {
			return &signals[i]
		}
	}
	return nil
}
