package leader

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/probe"
)

// MeasureBaselines stores a baseline for every rule that needs one and has
// none yet, and returns all stored baselines. before is when the job
// started: PromQL looks at the window before it.
func MeasureBaselines(ctx context.Context, l *ledger.Ledger, s *probe.Sampler, spec *jobspec.Spec, before time.Time) (map[string]float64, error) {
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

// p95 is the nearest-rank 95th percentile of ts, 0 for none: the fleet's
// commit_p95_seconds signal.
func p95(ts []time.Duration) time.Duration {
	if len(ts) == 0 {
		return 0
	}
	s := slices.Clone(ts)
	slices.Sort(s)
	return s[int(math.Ceil(0.95*float64(len(s))))-1]
}
