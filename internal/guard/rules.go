package guard

import (
	"fmt"
	"strconv"
	"time"

	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/probe"
)

// State is what the guard lets the fleet do.
type State string

// The guard's states, from green to red.
const (
	StateRun   State = "run"
	StateSlow  State = "slow"
	StatePause State = "pause"
)

func (s State) worse(o State) bool { return rank[s] > rank[o] }

var rank = map[State]int{StateRun: 0, "": 0, StateSlow: 1, StatePause: 2}

// Hold timing after a pause rule clears: 30 s by default, doubled each time
// the same rule fires again within an hour, up to 10 minutes. A signal that
// flaps around its limit would otherwise pause and resume the fleet every
// few seconds, each resume landing on a database that had not recovered.
const (
	DefaultHold  = 30 * time.Second
	MaxHold      = 10 * time.Minute
	holdMemory   = time.Hour
	blindToPause = 3 // check intervals a rule may be blind before it pauses
)

// RuleState is one rule's memory between checks. It is stored with the
// decision so a new leader carries on where the old one stopped.
type RuleState struct {
	Action     State         `json:"action,omitempty"`
	SlowSince  time.Time     `json:"slow_since,omitzero"`
	PauseSince time.Time     `json:"pause_since,omitzero"`
	HoldUntil  time.Time     `json:"hold_until,omitzero"`
	Hold       time.Duration `json:"hold,omitempty"`
	LastFired  time.Time     `json:"last_fired,omitzero"`
	BlindSince time.Time     `json:"blind_since,omitzero"`
	// Blind is the action of a rule that has no fresh signal, kept apart
	// from Action so a pause that fired before the blindness survives it.
	Blind State `json:"blind,omitempty"`
}

// Effective is the rule's action: the worse of what its signal and its
// blindness call for.
func (s *RuleState) Effective() State {
	if s.Blind.worse(s.Action) {
		return s.Blind
	}
	return s.Action
}

// SignalView is one rule as the last check saw it, for status and metrics.
type SignalView struct {
	Rule   string   `json:"rule"`
	Signal string   `json:"signal"`
	Value  *float64 `json:"value,omitempty"`
	Err    string   `json:"error,omitempty"`
	Note   string   `json:"note,omitempty"`
	Slow   *float64 `json:"slow_above,omitempty"`
	Pause  *float64 `json:"pause_above,omitempty"`
	Clear  *float64 `json:"clear_below,omitempty"`
	Action State    `json:"action,omitempty"`
}

// Verdict is the rules' combined answer for one check.
type Verdict struct {
	State   State
	Reasons []string
	Signals []SignalView
}

// Evaluator applies a job's rules to readings, one check at a time. It is
// pure: time comes in as an argument, so tests drive it on a fake clock.
type Evaluator struct {
	rules []jobspec.Rule
	// interval is the check interval: a blind rule pauses after a few.
	interval time.Duration
	hold     time.Duration
	states   map[string]*RuleState
}

// NewEvaluator returns an evaluator; prior is the rule memory of the last
// leader (nil to start fresh).
func NewEvaluator(rules []jobspec.Rule, interval, hold time.Duration, prior map[string]*RuleState) *Evaluator {
	if hold <= 0 {
		hold = DefaultHold
	}
	e := &Evaluator{rules: rules, interval: interval, hold: hold, states: map[string]*RuleState{}}
	for _, r := range rules {
		if s, ok := prior[r.Name]; ok && s != nil {
			c := *s
			e.states[r.Name] = &c
		} else {
			e.states[r.Name] = &RuleState{}
		}
	}
	return e
}

// States is the rule memory to store with the decision.
func (e *Evaluator) States() map[string]*RuleState {
	out := make(map[string]*RuleState, len(e.states))
	for k, v := range e.states {
		c := *v
		out[k] = &c
	}
	return out
}

// Step evaluates every rule once at now.
func (e *Evaluator) Step(now time.Time, readings map[string]probe.Reading, baseline map[string]float64) Verdict {
	v := Verdict{State: StateRun}
	for _, r := range e.rules {
		st := e.states[r.Name]
		view, reason := e.stepRule(now, r, st, readings[r.Name], baseline)
		v.Signals = append(v.Signals, view)
		if st.Effective().worse(v.State) {
			v.State = st.Effective()
		}
		if reason != "" {
			v.Reasons = append(v.Reasons, reason)
		}
	}
	return v
}

func (e *Evaluator) stepRule(now time.Time, r jobspec.Rule, st *RuleState, rd probe.Reading, baseline map[string]float64) (SignalView, string) {
	view := SignalView{Rule: r.Name, Signal: signalName(r), Note: rd.Note}
	base, hasBase := baseline[r.Name]
	if rd.Err == nil && r.NeedsBaseline() && !hasBase {
		rd.Err = fmt.Errorf("no baseline measured yet for this 1.2x-style rule")
	}
	if rd.Err != nil {
		// Missing eyes are not a green light: slow at once, pause when
		// the rule stays blind for a few checks.
		view.Err = rd.Err.Error()
		if st.BlindSince.IsZero() {
			st.BlindSince = now
		}
		blindFor := now.Sub(st.BlindSince)
		st.Blind = StateSlow
		if blindFor >= time.Duration(blindToPause)*e.interval {
			st.Blind = StatePause
		}
		view.Action = st.Effective()
		return view, fmt.Sprintf("%s: no fresh signal for %s (%v)", r.Name, blindFor.Round(time.Second), rd.Err)
	}
	st.BlindSince, st.Blind = time.Time{}, ""
	val := rd.Value
	view.Value = &val
	slow, pause, clr := resolve(r.SlowAbove, base), resolve(r.PauseAbove, base), resolve(r.ClearBelow, base)
	view.Slow, view.Pause, view.Clear = slow, pause, clr

	st.PauseSince = since(st.PauseSince, pause != nil && val > *pause, now)
	st.SlowSince = since(st.SlowSince, slow != nil && val > *slow, now)
	cleared := clr == nil || val < *clr
	held := func(s time.Time) bool { return !s.IsZero() && now.Sub(s) >= r.For.D() }

	if st.Action == StatePause {
		switch {
		case !cleared:
			st.HoldUntil = time.Time{} // back over: wait for a fresh clear
		case st.HoldUntil.IsZero():
			st.HoldUntil = now.Add(st.Hold)
		case !now.Before(st.HoldUntil):
			st.Action, st.HoldUntil = "", time.Time{}
		}
	}
	if st.Action != StatePause {
		switch {
		case held(st.PauseSince):
			if !st.LastFired.IsZero() && now.Sub(st.LastFired) < holdMemory && st.Hold > 0 {
				st.Hold = min(2*st.Hold, MaxHold)
			} else {
				st.Hold = e.hold
			}
			st.Action, st.LastFired, st.HoldUntil = StatePause, now, time.Time{}
		case st.Action == StateSlow && cleared:
			st.Action = ""
		case held(st.SlowSince):
			st.Action = StateSlow
		}
	}
	view.Action = st.Action
	return view, reasonFor(r, st, val, slow, pause, now)
}

func reasonFor(r jobspec.Rule, st *RuleState, val float64, slow, pause *float64, now time.Time) string {
	v := strconv.FormatFloat(val, 'g', 4, 64)
	switch {
	case st.Action == StatePause && !st.HoldUntil.IsZero():
		return fmt.Sprintf("%s cleared (%s); holding the pause until %s", r.Name, v, st.HoldUntil.UTC().Format(time.TimeOnly))
	case st.Action == StatePause && pause != nil:
		return fmt.Sprintf("%s=%s above pause limit %s for %s", r.Name, v, fmtF(*pause), r.For.D())
	case st.Action == StatePause:
		return fmt.Sprintf("%s=%s has not cleared", r.Name, v)
	case st.Action == StateSlow && slow != nil:
		return fmt.Sprintf("%s=%s above slow limit %s for %s", r.Name, v, fmtF(*slow), r.For.D())
	case st.Action == StateSlow:
		return fmt.Sprintf("%s=%s has not cleared", r.Name, v)
	}
	return ""
}

// since keeps the time a condition became true, or zero while it is false.
func since(t time.Time, cond bool, now time.Time) time.Time {
	switch {
	case !cond:
		return time.Time{}
	case t.IsZero():
		return now
	}
	return t
}

func resolve(t jobspec.Threshold, baseline float64) *float64 {
	if !t.Set {
		return nil
	}
	v := t.Resolve(baseline)
	return &v
}

func signalName(r jobspec.Rule) string {
	if r.Signal != "" {
		return r.Signal
	}
	return r.Kind()
}

func fmtF(f float64) string { return strconv.FormatFloat(f, 'g', 4, 64) }
