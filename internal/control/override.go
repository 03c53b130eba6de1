package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ebbhq/ebb/internal/guard"
)

// GuardOverride is an operator's override of a job's guard: until Until,
// workers ignore the guard's decision and run the job at its own limits.
type GuardOverride struct {
	By    string    `json:"by"`
	At    time.Time `json:"at"`
	Until time.Time `json:"until"`
}

// Bounds of an override's duration: a forgotten override must not run a
// job unguarded for days.
const (
	DefaultOverrideFor = 30 * time.Minute
	MaxOverrideFor     = 24 * time.Hour
)

// ErrBadOverrideFor is an override duration out of bounds.
var ErrBadOverrideFor = errors.New("bad override duration")

// OverrideGuard makes workers ignore job's guard for d (DefaultOverrideFor
// when 0), recorded with who and until when; it ends by itself. It also
// clears the job's own pause flag, as resume does.
func (c *Control) OverrideGuard(ctx context.Context, job, by string, d time.Duration) (*GuardOverride, error) {
	if d == 0 {
		d = DefaultOverrideFor
	}
	if d < time.Second || d > MaxOverrideFor {
		return nil, fmt.Errorf("%w: --for %s must be between 1s and %s", ErrBadOverrideFor, d, MaxOverrideFor)
	}
	if err := c.Resume(ctx, job, by); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	o := &GuardOverride{By: by, At: now, Until: now.Add(d)}
	b, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	if err := c.ledger.SetGuardOverride(ctx, job, b, d); err != nil {
		return nil, err
	}
	c.audit(ctx, job, by, ActionOverrideGuard, fmt.Sprintf("for %s, until %s", d, o.Until.Format(time.RFC3339)))
	return o, nil
}

// EndGuardOverride ends an override before it expires.
func (c *Control) EndGuardOverride(ctx context.Context, job, by string) error {
	if err := c.ledger.ClearGuardOverride(ctx, job); err != nil {
		return err
	}
	c.audit(ctx, job, by, ActionEndOverride, "")
	return nil
}

// GuardHold says why the guard holds job paused now ("" when it does
// not): resume clears only the operator's flag, and must say so when the
// job stays paused anyway.
func (c *Control) GuardHold(ctx context.Context, job string) (string, error) {
	raw, err := c.ledger.Decision(ctx, job)
	if err != nil || raw == nil {
		return "", err
	}
	d, err := guard.ParseDecision(raw)
	if err != nil || d.State != guard.StatePause {
		return "", nil
	}
	now, err := c.ledger.Now(ctx)
	if err != nil || !now.Before(d.Expires) {
		return "", err
	}
	if ov, err := c.ledger.GuardOverride(ctx, job); err != nil || ov != nil {
		return "", err
	}
	return guardHoldReason(d.Reasons), nil
}

func guardHoldReason(reasons []string) string {
	if len(reasons) == 0 {
		return "the guard holds the job paused"
	}
	return "the guard holds the job paused: " + reasons[0]
}

// guardOverride reads job's override for status, nil without one.
func (c *Control) guardOverride(ctx context.Context, job string) (*GuardOverride, error) {
	raw, err := c.ledger.GuardOverride(ctx, job)
	if err != nil || raw == nil {
		return nil, err
	}
	var o GuardOverride
	if err := json.Unmarshal(raw, &o); err != nil {
		return &GuardOverride{By: "unreadable: " + string(raw)}, nil
	}
	return &o, nil
}
