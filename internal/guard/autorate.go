package guard

import (
	"fmt"
	"time"

	"github.com/ebbhq/ebb/internal/jobspec"
)

// rate: auto steers the fleet's rate the way TCP steers a congestion
// window. While the objective holds with margin the rate doubles (slow
// start) until the first cut, then grows by a twentieth of the rate that
// was too much (by half while under half the best rate the objective held
// at); when the objective is crossed, or any slow rule fires (the
// fleet's own commit times and lock waits among them), it is cut to 70 %
// of what the fleet really ran at, deeper the further the objective is
// over (never below half). A latency percentile over a window shows a
// change of rate only after a while, so the rate is raised only once the
// last change has had settle to show, and a cut waits settle after the
// last cut; a crossing right after a raise is cut at once. Pause rules
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
	// ChangedAt is the last raise or cut.
	ChangedAt time.Time `json:"changed_at,omitzero"`
	// Good is the most rows/s the fleet ran with the objective under its
	// margin: after a collapse the rate climbs back fast to half of it.
	Good float64 `json:"good,omitempty"`
	// Why is the last step, for status and history.
	Why string `json:"why,omitempty"`
}

// AutoSettings are the job file's rate: auto limits.
type AutoSettings struct {
	Start, Max float64
	// Settle is how long a change of rate takes to show in the objective;
	// zero is autoSettle checks.
	Settle time.Duration
}

// The controller's constants. autoMargin keeps the objective from being
// run at its very edge, where noise alone would cross it every other check.
const (
	autoCut     = 0.7
	autoDeepCut = 0.5
	autoMargin  = 0.85
	autoGrowth  = 2.0
	autoStep    = 0.05
	// autoComfort is how far under Good the rate must be for it to grow by
	// autoRecover after a cut, not by autoStep.
	autoComfort = 0.5
	autoRecover = 1.5
	autoSettle  = 3
	autoMinRate = 1.0
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
	settle := set.Settle
	if settle <= 0 {
		settle = autoSettle * every
	}
	over, value, limit, known := objectiveState(objective)
	switch {
	case verdict == StatePause:
		s.Why = "held: a pause rule holds the job"
	case verdict == StateSlow || over:
		if !s.CutAt.IsZero() && now.Sub(s.CutAt) < settle {
			s.Why = "held: cut less than " + settle.String() + " ago, waiting for the signals to show it"
			break
		}
		from := s.Rate
		if observed > 0 && observed < from {
			from = observed
		}
		cut := autoCut
		if over && value > 0 {
			cut = max(autoDeepCut, min(autoCut, autoCut*limit/value))
		}
		s.Ceiling, s.CutAt, s.ChangedAt = from, now, now
		s.Rate = max(from*cut, autoMinRate)
		if over {
			s.Why = fmt.Sprintf("cut x%.2g: objective %.4g above its max %.4g", cut, value, limit)
		} else {
			s.Why = fmt.Sprintf("cut x%.2g: a slow rule fired", cut)
		}
	case !known:
		s.Why = "held: the objective has no fresh value"
	case value > autoMargin*limit:
		s.Why = fmt.Sprintf("held: objective %.4g within %.0f%% of its max %.4g", value, (1-autoMargin)*100, limit)
	case !s.ChangedAt.IsZero() && now.Sub(s.ChangedAt) < settle:
		s.Why = "held: the last change needs " + settle.String() + " to show in the objective"
	case observed < autoUnused*s.Rate:
		s.Why = fmt.Sprintf("held: the fleet ran %.0f rows/s, under half of the rate it has", observed)
	case set.Max > 0 && s.Rate >= set.Max:
		s.Rate = set.Max
		s.Why = "held: at rate_max"
	default:
		switch {
		case s.Ceiling == 0 || s.Good == 0:
			// Slow start, also after a cut that came before any rate
			// held the objective (the database was slow before the fleet
			// wrote a row): that cut says nothing about the rate.
			s.Rate *= autoGrowth
		case s.Rate < autoComfort*s.Good:
			// Far under a rate the objective held at before: a burst
			// that had nothing to do with the rate (a checkpoint, a
			// vacuum) cut it again and again while it lasted, and a
			// twentieth of the ceiling that collapsed with it would take
			// many minutes to climb back.
			s.Rate *= autoRecover
		default:
			s.Rate += max(autoStep*max(s.Ceiling, s.Good), autoMinRate)
		}
		if set.Max > 0 {
			s.Rate = min(s.Rate, set.Max)
		}
		s.Good = max(s.Good, observed)
		s.ChangedAt = now
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
