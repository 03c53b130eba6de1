package guard

import (
	"time"

	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/pause"
)

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
// concurrent use. It takes the ledger's Controls as plain data (the raw
// decision and the parsed overrides the runner read in one round trip); it
// makes no Redis call.
type Follower struct{}

// NewFollower returns a Follower.
func NewFollower() *Follower { return &Follower{} }

// Limits computes the limits for job at now.
func (f *Follower) Limits(spec *jobspec.Spec, c ledger.Controls, now time.Time) Limits {
	lim := withOverrides(spec, c.Overrides)
	// rate: auto follows the leader's rate unless an operator set one; the
	// start rate stands in while no decision carries one.
	auto := spec.AutoRate && c.Overrides.Rate == nil
	if auto {
		lim.Rate = spec.RateStart
	}
	if !Watched(spec) || c.GuardOverridden {
		// Nothing to watch means nothing can object: without Green the
		// batch sizer of such a job would stay at its first size forever.
		// An operator's override of the guard (like gh-ost's
		// no-throttle) runs the job at its own limits the same way, until
		// it expires; the leader keeps deciding and recording meanwhile.
		lim.Green = true
		return lim
	}
	var d *Decision
	if c.Decision != nil {
		d, _ = ParseDecision(c.Decision) // unreadable counts as missing
	}
	switch {
	case d == nil:
		// The guard has not looked yet: no batch before its first look.
		lim.Paused, lim.Waiting = true, true
		lim.Reason = "guard: waiting for the first decision (every worker runs the guard; is one running?)"
		return lim
	case !now.Before(d.Expires):
		return stale(lim, spec, now.Sub(d.Expires))
	}
	return follow(lim, d, auto)
}

// Watched reports whether the job has anything for the guard to watch. A
// job whose file turned every rule off (rules: []) and has no schedule
// needs no decision to run.
func Watched(spec *jobspec.Spec) bool {
	return len(spec.Guard.Rules) > 0 || (spec.Schedule != nil && len(spec.Schedule.Windows) > 0)
}

// withOverrides is the job file's limits with the live overrides applied.
func withOverrides(spec *jobspec.Spec, o ledger.Overrides) Limits {
	lim := Limits{
		Rate:       spec.Rate,
		MaxWorkers: spec.MaxWorkers,
		Sleep:      spec.Sleep.D(),
	}
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
	return lim
}

// stale is lim for a decision that expired age ago. Missing eyes are not a
// green light: the smallest batch, at least a second apart, until a leader
// speaks again, and a pause once no leader has renewed the lease for a
// whole LeaseTTL.
func stale(lim Limits, spec *jobspec.Spec, age time.Duration) Limits {
	lim.Stale = true
	if age >= LeaseTTL(spec.Guard.CheckEvery.D()) {
		lim.Paused = true
		lim.Reason = pause.NoDecisionReason(age)
		return lim
	}
	lim.BatchMax = spec.Batch.Min
	lim.Sleep = max(lim.Sleep, time.Second)
	if lim.Rate > 0 {
		lim.Rate *= minGuardFactor
	}
	lim.Reason = "guard: decision is stale, running at the minimum"
	return lim
}

// follow is lim under a fresh decision d; auto when the leader's rate: auto
// rate applies.
func follow(lim Limits, d *Decision, auto bool) Limits {
	switch d.State {
	case StatePause:
		lim.Paused = true
		lim.Reason = pause.GuardReason(string(d.State), d.Reasons)
		return lim
	case StateSlow:
		lim.Reason = pause.GuardReason(string(d.State), d.Reasons)
	}
	switch {
	case auto:
		if d.Auto != nil && d.Auto.Rate > 0 {
			lim.Rate = d.Auto.Rate
		}
		lim.Rate *= d.Factor
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

// ReaderLimits are the limits a reader beside the fleet obeys (verify):
// the guard's fresh decision when there is one, else the job file's limits
// with the live overrides. A job no worker runs (a finished one) has no
// leader publishing decisions, and a reader must not wait for one.
func (f *Follower) ReaderLimits(spec *jobspec.Spec, c ledger.Controls, now time.Time) Limits {
	lim := f.Limits(spec, c, now)
	if lim.Stale || lim.Waiting {
		return withOverrides(spec, c.Overrides)
	}
	return lim
}
