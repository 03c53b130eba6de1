package control

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/leader"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/probe"
)

// SetGetenv replaces os.Getenv for reading the guard's environment (the
// Prometheus URL); tests running in parallel pass a map.
func (c *Control) SetGetenv(f func(string) string) { c.getenv = f }

func (c *Control) env(k string) string {
	if c.getenv == nil {
		return os.Getenv(k)
	}
	return c.getenv(k)
}

// CheckGuard refuses a job whose guard cannot work where it is planned or
// started: a prometheus rule needs a parsable Prometheus URL in the
// environment variable the job names.
func CheckGuard(spec *jobspec.Spec, getenv func(string) string) error {
	for _, r := range spec.Guard.Rules {
		if r.Kind() == "prometheus" {
			if err := probe.CheckPrometheusURL(getenv, spec.Guard.PrometheusEnv); err != nil {
				return fmt.Errorf("%w: rule %s: %w", ErrBadGuard, r.Name, err)
			}
			return nil
		}
	}
	return nil
}

// ErrBadGuard is a guard configuration that cannot run.
var ErrBadGuard = errors.New("guard cannot run")

// measureBaselines stores the baseline of every relative rule before the
// first batch: PromQL over the window before start, other signals sampled
// now. A baseline that cannot be measured is a warning: the leader tries
// again, and until then the rule counts as blind (slow, then pause).
func (c *Control) measureBaselines(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, created time.Time) []string {
	need := false
	for _, r := range spec.Guard.Rules {
		need = need || r.NeedsBaseline()
	}
	if !need {
		return nil
	}
	s, err := probe.NewSampler(probe.SamplerConfig{Spec: spec, Primary: pool, Getenv: c.env,
		CommitP95: func(context.Context) (float64, error) { return 0, errors.New("no commits before start") }})
	if err == nil {
		_, err = leader.MeasureBaselines(ctx, c.ledger, s, spec, created)
	}
	if err != nil {
		return []string{fmt.Sprintf("baseline: %v (the guard leader retries; until then those rules slow, then pause the job)", err)}
	}
	return nil
}

// OverrideFlags are the live limits enqueuer set writes; nil is untouched.
type OverrideFlags struct {
	Rate       *float64
	MaxWorkers *int
	BatchMax   *int
	Sleep      *time.Duration
}

// SetOverrides stores live limits of job, which workers apply before their
// next batch. clear drops every override first.
func (c *Control) SetOverrides(ctx context.Context, job string, o OverrideFlags, clear bool) (map[string]string, error) {
	if _, err := c.ledger.Meta(ctx, job); errors.Is(err, ledger.ErrNotFound) {
		return nil, fmt.Errorf("%w %q: nothing to set; list jobs with enqueuer status", ErrUnknownJob, job)
	} else if err != nil {
		return nil, err
	}
	fields := map[string]string{}
	if o.Rate != nil {
		if *o.Rate < 0 {
			return nil, fmt.Errorf("%w: --rate must be 0 (unlimited) or more rows per second", ErrBadOverride)
		}
		fields[ledger.OverrideRate] = strconv.FormatFloat(*o.Rate, 'g', -1, 64)
	}
	for _, f := range []struct {
		name string
		v    *int
	}{{ledger.OverrideMaxWorkers, o.MaxWorkers}, {ledger.OverrideBatchMax, o.BatchMax}} {
		if f.v == nil {
			continue
		}
		if *f.v < 0 {
			return nil, fmt.Errorf("%w: %s must be 0 (no limit) or more", ErrBadOverride, f.name)
		}
		fields[f.name] = strconv.Itoa(*f.v)
	}
	if o.Sleep != nil {
		if *o.Sleep < 0 {
			return nil, fmt.Errorf("%w: --sleep must not be negative", ErrBadOverride)
		}
		fields[ledger.OverrideSleep] = o.Sleep.String()
	}
	if clear {
		if err := c.ledger.ClearOverrides(ctx, job); err != nil {
			return nil, err
		}
	}
	if err := c.ledger.SetOverrides(ctx, job, fields); err != nil {
		return nil, err
	}
	return fields, nil
}

// ErrBadOverride is an override value ebb refuses.
var ErrBadOverride = errors.New("bad override")

// GuardStatus is the guard's view of a job in status.
type GuardStatus struct {
	State   string             `json:"state"`
	Stale   bool               `json:"stale,omitempty"`
	Leader  string             `json:"leader,omitempty"`
	At      time.Time          `json:"at,omitzero"`
	Expires time.Time          `json:"expires,omitzero"`
	Factor  float64            `json:"rate_factor"`
	Window  string             `json:"window,omitempty"`
	Reasons []string           `json:"reasons,omitempty"`
	Signals []guard.SignalView `json:"signals,omitempty"`
	// Baseline holds each relative rule's level before the job started.
	Baseline map[string]float64 `json:"baseline,omitempty"`
}

// guardStatus reads the decision, the baseline and the overrides.
func (c *Control) guardStatus(ctx context.Context, job string, spec *jobspec.Spec, now time.Time) (*GuardStatus, map[string]string, error) {
	o, err := c.ledger.Overrides(ctx, job)
	overrides := map[string]string{}
	if err != nil {
		// Unreadable overrides are shown, not hidden: workers pause on them.
		overrides["error"] = err.Error()
	}
	if o.Rate != nil {
		overrides[ledger.OverrideRate] = strconv.FormatFloat(*o.Rate, 'g', -1, 64)
	}
	if o.MaxWorkers != nil {
		overrides[ledger.OverrideMaxWorkers] = strconv.Itoa(*o.MaxWorkers)
	}
	if o.BatchMax != nil {
		overrides[ledger.OverrideBatchMax] = strconv.Itoa(*o.BatchMax)
	}
	if o.Sleep != nil {
		overrides[ledger.OverrideSleep] = o.Sleep.String()
	}
	if spec == nil || !guard.Watched(spec) {
		return nil, overrides, nil
	}
	g := &GuardStatus{State: "none", Factor: 1}
	raw, err := c.ledger.Decision(ctx, job)
	if err != nil {
		return nil, overrides, err
	}
	if raw != nil {
		d, err := guard.ParseDecision(raw)
		if err != nil {
			g.Reasons = []string{err.Error()}
		} else {
			g.State, g.Leader, g.At, g.Expires, g.Factor, g.Window = string(d.State), d.Leader, d.At, d.Expires, d.Factor, d.Window
			g.Reasons, g.Signals = d.Reasons, d.Signals
			g.Stale = !now.Before(d.Expires)
		}
	} else {
		g.Stale = true
		g.Reasons = []string{"no guard decision yet: workers run the guard; none has published (are workers running?)"}
	}
	if g.Baseline, err = c.ledger.Baseline(ctx, job); err != nil {
		return nil, overrides, err
	}
	if len(g.Baseline) == 0 {
		g.Baseline = nil
	}
	return g, overrides, nil
}
