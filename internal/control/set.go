package control

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ebbhq/ebb/internal/ledger"
)

// OverrideFlags are the live limits enqueuer set writes; nil is untouched.
type OverrideFlags struct {
	Rate       *float64
	MaxWorkers *int
	BatchMax   *int
	Sleep      *time.Duration
}

// SetOverrides stores live limits of job, which workers apply before their
// next batch. clear drops every override first.
func (c *Control) SetOverrides(ctx context.Context, job, by string, o OverrideFlags, clear bool) (map[string]string, error) {
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
	if detail := overridesDetail(fields, clear); detail != "" {
		c.audit(ctx, job, by, ActionSet, detail)
	}
	return fields, nil
}

// overridesDetail says what a set changed, e.g. "rate=500 sleep=1s", with
// "cleared overrides" first when it dropped them.
func overridesDetail(fields map[string]string, clear bool) string {
	var parts []string
	if clear {
		parts = append(parts, "cleared overrides")
	}
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		parts = append(parts, k+"="+fields[k])
	}
	return strings.Join(parts, " ")
}

// ErrBadOverride is an override value ebb refuses.
var ErrBadOverride = errors.New("bad override")
