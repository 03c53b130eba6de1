package guard

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/ebbhq/ebb/internal/probe"
)

// Decision is what the guard leader publishes after each check. Workers
// read it before every batch; it expires, so a dead leader cannot leave a
// green light behind.
type Decision struct {
	State State `json:"state"`
	// Factor multiplies the job's rate: the slow rules' cut times the
	// schedule window's multiplier. A job without a rate follows
	// UnlimitedFactor instead.
	Factor float64 `json:"factor"`
	// GuardFactor is the slow rules' part of Factor: halved each check a
	// slow rule holds, restored ×1.5 a check after it clears.
	GuardFactor float64 `json:"guard_factor"`
	// Base is the fleet's rows/s, observed while nothing held it back, that
	// UnlimitedFactor applies to when the job has no rate of its own
	// (rate: 0) and is being slowed or is in a window under x1.
	Base    float64      `json:"base,omitempty"`
	Window  string       `json:"window,omitempty"`
	Reasons []string     `json:"reasons,omitempty"`
	Signals []SignalView `json:"signals,omitempty"`
	Leader  string       `json:"leader"`
	At      time.Time    `json:"at"`
	Expires time.Time    `json:"expires"`
	// Rules is the rule memory the next leader resumes from.
	Rules map[string]*RuleState `json:"rules,omitempty"`
	// Auto is the rate: auto controller's rate and memory; nil for a job
	// with a static rate. Factor then carries the schedule's multiplier
	// only: the slow rules act through the controller.
	Auto *AutoState `json:"auto,omitempty"`
	// RowsPerSec is the fleet's rate over the last check, as the leader
	// measured it from the job's row counter: what "rows/s now" shows.
	RowsPerSec float64 `json:"rows_per_sec,omitempty"`
}

// UnlimitedFactor is the cut applied to Base for a job without a rate:
// GuardFactor × min(window, 1), i.e. min(Factor, GuardFactor). A window
// above x1 cannot raise "unlimited", and must not hide a slow-down either:
// with a x2 window, Factor stayed >= 1 until the guard had halved twice, so
// the first slow-down did nothing.
func (d *Decision) UnlimitedFactor() float64 { return min(d.Factor, d.GuardFactor) }

// Throttled reports whether d holds a job without a rate of its own below
// its full speed (paused, or a Base cut by a factor under 1): rows/s
// observed while it is in force are not the fleet's full speed, so the
// leader must not take them as the next Base.
func (d *Decision) Throttled() bool {
	return d.State == StatePause || (d.Base > 0 && d.UnlimitedFactor() < 1)
}

// Check is what one leader check knows besides the rules' verdict: the
// memory the leader carries from its previous decision, and the schedule.
type Check struct {
	Verdict Verdict
	// GuardFactor is the slow rules' cut of the previous decision (1: none).
	GuardFactor float64
	// Base is the fleet's last rows/s observed while nothing held it back.
	Base float64
	// Schedule is the schedule window's multiplier (1 outside all windows),
	// Window its name.
	Schedule float64
	Window   string
	// Rules is the rule memory after the verdict, stored for the next leader.
	Rules      map[string]*RuleState
	Leader     string
	Now        time.Time
	CheckEvery time.Duration
	// Auto is set for a rate: auto job: its limits, the controller's
	// previous state, and the fleet's rows/s since the last check.
	Auto     *AutoSettings
	AutoPrev AutoState
	Observed float64
}

// Decide turns one check into the decision the leader publishes. It is pure:
// the leader samples, steps the Evaluator and observes the fleet's rows/s,
// and Decide only combines them, so the rate arithmetic is table-tested.
func Decide(c Check) *Decision {
	v := c.Verdict
	gf := stepFactor(c.GuardFactor, v.State)
	if c.Auto != nil {
		gf = 1
	}
	d := &Decision{
		State: v.State, GuardFactor: gf, Factor: gf * c.Schedule, Window: c.Window,
		Reasons: v.Reasons, Signals: v.Signals, Leader: c.Leader,
		At: c.Now, Expires: c.Now.Add(DecisionTTL(c.CheckEvery)), Rules: c.Rules,
	}
	if d.UnlimitedFactor() < 1 {
		d.Base = c.Base
	}
	if d.State == StateRun && gf < 1 {
		d.Reasons = append(d.Reasons, fmt.Sprintf("restoring rate after a slow-down (x%.3g)", gf))
	}
	if c.Auto != nil {
		st := stepAuto(c.AutoPrev, *c.Auto, v.State, objectiveView(v.Signals), c.Observed, c.Now, c.CheckEvery)
		d.Auto = &st
	}
	if c.Schedule == 0 && d.State != StatePause {
		d.State = StatePause
		d.Reasons = append(d.Reasons, "schedule window "+c.Window+" pauses the job")
	} else if c.Window != "" {
		d.Reasons = append(d.Reasons, "schedule window "+c.Window)
	}
	return d
}

// LeaseTTL is how long the guard lease lives without renewal: another
// worker takes over within this. The leader renews it when a check is due,
// and a check may spend a probe timeout sampling, so with check_every: 1s a
// bare 3 × check_every let a healthy leader's lease lapse between renewals
// and leadership flap between workers.
func LeaseTTL(checkEvery time.Duration) time.Duration {
	return 3*checkEvery + probe.DefaultProbeTimeout
}

// DecisionTTL is how long a decision counts as fresh: two check intervals
// plus one probe timeout. A decision is stamped before the leader samples,
// and one sample may take up to probe.DefaultProbeTimeout (probes of a job run
// concurrently, each under its own timeout), so with check_every: 1s and
// plain 2 × check_every a slow but healthy probe made decisions flip to
// stale between two checks. See README.md, "Decision timing".
func DecisionTTL(checkEvery time.Duration) time.Duration {
	return 2*checkEvery + probe.DefaultProbeTimeout
}

// ParseDecision decodes a stored decision.
func ParseDecision(b []byte) (*Decision, error) {
	var d Decision
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("guard decision is not valid JSON (the leader rewrites it within one check): %w", err)
	}
	return &d, nil
}

// How the slow rules' cut moves: halved each check a slow rule holds, never
// below minGuardFactor (a rate of 0 would read as unlimited), and restored
// by restoreFactor a check once it clears, so the fleet climbs back instead
// of jumping onto a database that just recovered.
const (
	minGuardFactor = 1.0 / 64
	restoreFactor  = 1.5
)

// stepFactor is the slow rules' cut after a check with verdict state s: a
// blind rule's slow halves it too, and a pause leaves it as it was.
func stepFactor(f float64, s State) float64 {
	switch s {
	case StateSlow:
		return max(f/2, minGuardFactor)
	case StateRun:
		return min(f*restoreFactor, 1)
	}
	return f
}

// Change is one entry of a job's guard history: what the leader changed
// (state or rate factor), when, and what it saw. "Why was it slow at
// 03:12?" is answered by the entries around 03:12.
type Change struct {
	At    time.Time `json:"at"`
	From  State     `json:"from"`
	State State     `json:"state"`
	// FromFactor and Factor are the rate multiplier before and after.
	FromFactor float64 `json:"from_factor"`
	Factor     float64 `json:"factor"`
	// FromRate and Rate are rate: auto's rows/s before and after, and
	// RateWhy the controller's reason.
	FromRate float64  `json:"from_rate,omitempty"`
	Rate     float64  `json:"rate,omitempty"`
	RateWhy  string   `json:"rate_why,omitempty"`
	Reasons  []string `json:"reasons,omitempty"`
	// Signals are the rules' values at the change, by rule.
	Signals map[string]float64 `json:"signals,omitempty"`
	Leader  string             `json:"leader"`
}

// Point is one measurement of a job's series, taken at a guard check: the
// fleet's rate, the guard's state, the rate factor and every rule's signal.
type Point struct {
	At         time.Time          `json:"at"`
	RowsPerSec float64            `json:"rows_per_sec"`
	State      State              `json:"state"`
	Factor     float64            `json:"factor"`
	Signals    map[string]float64 `json:"signals,omitempty"`
}

// PointOf is the series point of decision d.
func PointOf(d *Decision) Point {
	p := Point{At: d.At, RowsPerSec: d.RowsPerSec, State: d.State, Factor: d.Factor}
	for _, s := range d.Signals {
		if s.Value != nil {
			if p.Signals == nil {
				p.Signals = map[string]float64{}
			}
			p.Signals[s.Rule] = *s.Value
		}
	}
	return p
}

// Published is what the history last recorded of a job's decisions.
type Published struct {
	State  State
	Factor float64
	// Rate is rate: auto's rows/s when last recorded.
	Rate float64
}

// autoRecordRise is how far rate: auto's rate must have risen since the
// last entry to be recorded: every cut is kept, but the steady additive
// climb, one small step a check, would crowd out the capped history.
const autoRecordRise = 1.2

// ChangeFrom is the history entry for d after prev; ok is false when d
// changes neither the state, the rate factor, nor rate: auto's rate by a
// cut or a rise of autoRecordRise since prev.
func ChangeFrom(prev Published, d *Decision) (c Change, ok bool) {
	rate := prev.Rate
	if d.Auto != nil {
		rate = d.Auto.Rate
	}
	rateMoved := rate < prev.Rate || rate >= prev.Rate*autoRecordRise && rate != prev.Rate
	if d.State == prev.State && d.Factor == prev.Factor && !rateMoved {
		return Change{}, false
	}
	c = Change{At: d.At, From: prev.State, State: d.State, FromFactor: prev.Factor, Factor: d.Factor, Reasons: d.Reasons, Leader: d.Leader}
	if d.Auto != nil {
		c.FromRate, c.Rate, c.RateWhy = prev.Rate, d.Auto.Rate, d.Auto.Why
	}
	for _, s := range d.Signals {
		if s.Value != nil {
			if c.Signals == nil {
				c.Signals = map[string]float64{}
			}
			c.Signals[s.Rule] = *s.Value
		}
	}
	return c, true
}
