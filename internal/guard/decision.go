package guard

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/ledger"
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
}

// UnlimitedFactor is the cut applied to Base for a job without a rate:
// GuardFactor × min(window, 1), i.e. min(Factor, GuardFactor). A window
// above x1 cannot raise "unlimited", and must not hide a slow-down either:
// with a x2 window, Factor stayed >= 1 until the guard had halved twice, so
// the first slow-down did nothing.
func (d *Decision) UnlimitedFactor() float64 { return min(d.Factor, d.GuardFactor) }

// How the slow rules' cut moves: halved each check a slow rule holds, never
// below minGuardFactor (a rate of 0 would read as unlimited), and restored
// by restoreFactor a check once it clears, so the fleet climbs back instead
// of jumping onto a database that just recovered.
const (
	minGuardFactor = 1.0 / 64
	restoreFactor  = 1.5
)

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
}

// Decide turns one check into the decision the leader publishes. It is pure:
// the leader samples, steps the Evaluator and observes the fleet's rows/s,
// and Decide only combines them, so the rate arithmetic is table-tested.
func Decide(c Check) *Decision {
	v := c.Verdict
	gf := stepFactor(c.GuardFactor, v.State)
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
	if c.Schedule == 0 && d.State != StatePause {
		d.State = StatePause
		d.Reasons = append(d.Reasons, "schedule window "+c.Window+" pauses the job")
	} else if c.Window != "" {
		d.Reasons = append(d.Reasons, "schedule window "+c.Window)
	}
	return d
}

// Throttled reports whether d holds a job without a rate of its own below
// its full speed (paused, or a Base cut by a factor under 1): rows/s
// observed while it is in force are not the fleet's full speed, so the
// leader must not take them as the next Base.
func (d *Decision) Throttled() bool {
	return d.State == StatePause || (d.Base > 0 && d.UnlimitedFactor() < 1)
}

// Limits are what one batch obeys.
type Limits struct {
	Paused bool
	Reason string
	// Rate is rows per second for the whole fleet; 0 is unlimited.
	Rate float64
	// MaxWorkers caps batches in flight across the fleet; 0 is unlimited.
	MaxWorkers int
	// BatchMax caps the batch size; 0 leaves the job's.
	BatchMax int
	Sleep    time.Duration
	// Green allows the batch sizer to grow.
	Green bool
	// Stale is set when the worker runs without a fresh decision.
	Stale bool
	// Waiting is set while the job has no decision at all yet: a new
	// leader is about to publish its first one.
	Waiting bool
}

// Follower turns the leader's decision and the live overrides into limits.
// It is stateless (the decision carries its own expiry) and safe for
// concurrent use.
type Follower struct{}

// NewFollower returns a Follower.
func NewFollower() *Follower { return &Follower{} }

// Limits computes the limits for job at now.
func (f *Follower) Limits(spec *jobspec.Spec, c ledger.Controls, now time.Time) Limits {
	lim := Limits{
		Rate:       spec.Rate,
		MaxWorkers: spec.MaxWorkers,
		Sleep:      spec.Sleep.D(),
	}
	o := c.Overrides
	if o.Rate != nil {
		lim.Rate = *o.Rate
	}
	if o.MaxWorkers != nil {
		lim.MaxWorkers = *o.MaxWorkers
	}
	if o.BatchMax != nil {
		lim.BatchMax = *o.BatchMax
	}
	if o.Sleep != nil {
		lim.Sleep = *o.Sleep
	}

	if !Watched(spec) {
		// Nothing to watch means nothing can object: without Green the
		// batch sizer of such a job would stay at its first size forever.
		lim.Green = true
		return lim
	}
	every := spec.Guard.CheckEvery.D()
	var d *Decision
	if c.Decision != nil {
		d, _ = ParseDecision(c.Decision) // unreadable counts as missing
	}
	if d == nil {
		// The guard has not looked yet: no batch before its first look.
		lim.Paused, lim.Waiting = true, true
		lim.Reason = "guard: waiting for the first decision (every worker runs the guard; is one running?)"
		return lim
	}
	if !now.Before(d.Expires) {
		age := now.Sub(d.Expires)
		lim.Stale = true
		if age >= LeaseTTL(every) {
			lim.Paused = true
			lim.Reason = fmt.Sprintf("guard: no fresh decision for %s (is any worker running the guard? see enqueuer status)", age.Round(time.Second))
			return lim
		}
		// Missing eyes are not a green light: the smallest batch, at
		// least a second apart, until a leader speaks again.
		lim.BatchMax = spec.Batch.Min
		lim.Sleep = max(lim.Sleep, time.Second)
		if lim.Rate > 0 {
			lim.Rate *= minGuardFactor
		}
		lim.Reason = "guard: decision is stale, running at the minimum"
		return lim
	}
	switch d.State {
	case StatePause:
		lim.Paused = true
		lim.Reason = "guard: " + joinReasons(d)
		return lim
	case StateSlow:
		lim.Reason = "guard: " + joinReasons(d)
	}
	switch {
	case lim.Rate > 0:
		lim.Rate *= d.Factor
	case d.Base > 0 && d.UnlimitedFactor() < 1:
		// Never below the guard's floor: a rate of 0 would read as
		// unlimited.
		lim.Rate = d.Base * max(d.UnlimitedFactor(), minGuardFactor)
	}
	lim.Green = d.State == StateRun && d.GuardFactor >= 1
	return lim
}

// Watched reports whether the job has anything for the guard to watch. A
// job whose file turned every rule off (rules: []) and has no schedule
// needs no decision to run.
func Watched(spec *jobspec.Spec) bool {
	return len(spec.Guard.Rules) > 0 || (spec.Schedule != nil && len(spec.Schedule.Windows) > 0)
}

func joinReasons(d *Decision) string {
	if len(d.Reasons) == 0 {
		return string(d.State)
	}
	s := d.Reasons[0]
	for _, r := range d.Reasons[1:] {
		s += "; " + r
	}
	return s
}

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
