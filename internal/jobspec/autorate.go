package jobspec

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// rate: auto. The fleet's rate is steered by the guard leader like a
// congestion window (guard.StepAuto): raised while the objective holds
// with margin, cut when it is crossed or a slow rule fires, never above
// rate_max; pause rules still pause.

// Objective is what rate: auto steers by: one signal, kept at or under Max.
type Objective struct {
	// Signal names a guard rule (its number is read the same way) or a
	// built-in signal.
	Signal string `yaml:"signal" json:"signal"`
	// Max is absolute (0.05) or relative to the signal's level before the
	// job started (1.2x).
	Max Threshold `yaml:"max" json:"max"`
	// Settle is how long a change of rate takes to show in the signal: a
	// percentile over a 1m window needs about 1m. The controller raises
	// the rate only once the last change has had it. Default: three
	// checks (guard.check_every).
	Settle Duration `yaml:"settle,omitempty" json:"settle,omitempty"`
}

// ObjectiveRule is the name of the guard rule rate: auto reads its
// objective from: a copy of the named rule's source (or the built-in
// signal) that slows the job above the objective's max. Its value and its
// resolved max are the controller's input, and it shows in status, metrics
// and history like any rule.
const ObjectiveRule = "objective"

// Defaults of rate: auto.
const (
	// DefaultRateStart is where the controller starts: low enough for a
	// cold, busy table, and doubled each check while the objective holds.
	DefaultRateStart = 1000.0
	// autoCommitP95 is the commit-time limit rate: auto adds when the job
	// has no rule on commit_p95_seconds: a fast rate that makes the
	// fleet's own batches slow is not fast.
	autoCommitP95 = 1.0
	// autoLockWaits is the lock-wait limit rate: auto adds when the job
	// has no rule on lock_waits: live sessions queueing behind our batches.
	autoLockWaits = 3.0
)

// RateLine says the job's rate for plan and the runbook: "unlimited", a
// number, or rate: auto with its objective and limits.
func (s *Spec) RateLine() string {
	switch {
	case s.AutoRate && s.Objective != nil:
		line := fmt.Sprintf("auto (steered to keep %s <= %s, from %g rows/s", s.Objective.Signal, s.Objective.Max, s.RateStart)
		if s.RateMax > 0 {
			line += fmt.Sprintf(", never above %g", s.RateMax)
		}
		return line + ")"
	case s.Rate > 0:
		return fmt.Sprintf("%g rows/s", s.Rate)
	}
	return "unlimited"
}

// rateValue is the job file's rate: rows per second, or auto.
type rateValue struct {
	rows float64
	auto bool
}

func (r *rateValue) UnmarshalYAML(n *yaml.Node) error {
	v := strings.TrimSpace(n.Value)
	if n.Kind == yaml.ScalarNode && strings.EqualFold(v, "auto") {
		*r = rateValue{auto: true}
		return nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if n.Kind != yaml.ScalarNode || err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("line %d: rate must be rows per second for the whole fleet (0: unlimited) or auto (steered by objective), got %q", n.Line, v)
	}
	*r = rateValue{rows: f}
	return nil
}

// applyAutoDefaults adds what rate: auto needs to the guard's rules: the
// objective rule, and the fleet's own commit times and lock waits when
// the job watches neither. A clash or an unknown signal is left for
// validateAuto to name.
func (s *Spec) applyAutoDefaults() {
	if !s.AutoRate || s.Objective == nil {
		return
	}
	if s.Objective.Settle == 0 {
		s.Objective.Settle = 3 * s.Guard.CheckEvery
	}
	if s.RateStart == 0 {
		s.RateStart = DefaultRateStart
		if s.RateMax > 0 {
			s.RateStart = min(s.RateStart, s.RateMax)
		}
	}
	_, named := s.ruleNamed(s.Objective.Signal)
	_, clash := s.ruleNamed(ObjectiveRule)
	if clash || s.Objective.Signal == ObjectiveRule || (!named && !slices.Contains(Signals, s.Objective.Signal)) {
		return
	}
	s.Guard.Rules = append(s.Guard.Rules, s.objectiveRule())
	if !s.watches(SignalCommitP95) {
		s.Guard.Rules = append(s.Guard.Rules, Rule{Name: SignalCommitP95, Signal: SignalCommitP95, SlowAbove: Abs(autoCommitP95), ClearBelow: Abs(autoCommitP95 / 2)})
	}
	if !s.watches(SignalLockWaits) {
		s.Guard.Rules = append(s.Guard.Rules, Rule{Name: SignalLockWaits, Signal: SignalLockWaits, SlowAbove: Abs(autoLockWaits), ClearBelow: Abs(1)})
	}
}

// objectiveRule is the rule rate: auto reads its objective from: the named
// rule's source, or the built-in signal, slowing the job above max.
func (s *Spec) objectiveRule() Rule {
	o := Rule{Name: ObjectiveRule, Signal: s.Objective.Signal, SlowAbove: s.Objective.Max, ClearBelow: s.Objective.Max}
	if r, ok := s.ruleNamed(s.Objective.Signal); ok {
		o.Signal, o.Prometheus, o.SQL, o.HTTP, o.JSONField, o.For = r.Signal, r.Prometheus, r.SQL, r.HTTP, r.JSONField, r.For
	}
	return o
}

func (s *Spec) ruleNamed(name string) (Rule, bool) {
	for _, r := range s.Guard.Rules {
		if r.Name == name {
			return r, true
		}
	}
	return Rule{}, false
}

func (s *Spec) watches(signal string) bool {
	for _, r := range s.Guard.Rules {
		if r.Signal == signal {
			return true
		}
	}
	return false
}

// validateAuto checks rate: auto and its settings.
func (s *Spec) validateAuto(add addFunc) {
	if !s.AutoRate {
		for _, f := range []struct {
			field string
			set   bool
		}{{"objective", s.Objective != nil}, {"rate_max", s.RateMax != 0}, {"rate_start", s.RateStart != 0}} {
			if f.set {
				add(f.field, "steers rate: auto; write rate: auto, or drop %s", f.field)
			}
		}
		return
	}
	if s.Objective == nil {
		add("rate", "auto needs an objective, e.g. objective: {signal: app_p95, max: 1.5x} (a guard rule's name or a built-in signal)")
		return
	}
	o := s.Objective
	_, named := s.ruleNamed(o.Signal)
	switch {
	case o.Signal == "":
		add("objective.signal", "missing; name a guard rule or a built-in signal (%s)", strings.Join(Signals, ", "))
	case o.Signal == ObjectiveRule:
		add("objective.signal", "%q is the rule rate: auto makes for its objective; name the rule or built-in signal to read", ObjectiveRule)
	case !named && !slices.Contains(Signals, o.Signal):
		add("objective.signal", "%q is neither a guard rule's name nor a built-in signal (%s)", o.Signal, strings.Join(Signals, ", "))
	case !o.Max.Set || o.Max.Value <= 0 || math.IsNaN(o.Max.Value):
		add("objective.max", "must be above 0: an absolute limit (0.25) or a multiple of the level before the job (1.5x)")
	case o.Settle < 0:
		add("objective.settle", "must not be negative: how long a change of rate takes to show in the signal")
	default:
		if obj, ok := s.ruleNamed(ObjectiveRule); !ok || obj != s.objectiveRule() {
			add("guard.rules", "rule %q is the one rate: auto makes from objective; rename a rule of that name (or start the job from its file again)", ObjectiveRule)
		}
	}
	if s.Rate != 0 {
		add("rate", "is auto or a number, not both")
	}
	if s.RateMax < 0 || math.IsNaN(s.RateMax) {
		add("rate_max", "must not be negative (rows per second; 0 means no cap), got %g", s.RateMax)
	}
	if s.RateStart <= 0 || math.IsNaN(s.RateStart) {
		add("rate_start", "must be above 0 rows per second, got %g", s.RateStart)
	} else if s.RateMax > 0 && s.RateStart > s.RateMax {
		add("rate_start", "%g is above rate_max %g", s.RateStart, s.RateMax)
	}
}
