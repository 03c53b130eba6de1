package probe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ebbhq/ebb/internal/jobspec"
)

// BaselineStore keeps each rule's baseline once measured (the ledger), so a
// relative limit compares against the level before the job, not one the
// job itself raised.
type BaselineStore interface {
	Baseline(ctx context.Context, job string) (map[string]float64, error)
	SetBaseline(ctx context.Context, job, rule string, v float64) (bool, error)
}

// MeasureBaselines stores a baseline for every rule that needs one and has
// none yet, and returns all stored baselines. before is when the job
// started: PromQL looks at the window before it. enqueuer start measures
// them before the first batch; the guard leader retries any it could not.
func MeasureBaselines(ctx context.Context, l BaselineStore, s *Sampler, spec *jobspec.Spec, before time.Time) (map[string]float64, error) {
	have, err := l.Baseline(ctx, spec.Name)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, r := range spec.Guard.Rules {
		if !r.NeedsBaseline() {
			continue
		}
		if _, ok := have[r.Name]; ok {
			continue
		}
		v, err := s.Baseline(ctx, r, before, 3, time.Second)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %s: %w", r.Name, err))
			continue
		}
		if _, err := l.SetBaseline(ctx, spec.Name, r.Name, v); err != nil {
			errs = append(errs, err)
			continue
		}
	}
	if have, err = l.Baseline(ctx, spec.Name); err != nil {
		return nil, err
	}
	return have, errors.Join(errs...)
}
