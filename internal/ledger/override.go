package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// GuardOverrideKey exists while an operator overrides the job's guard
// (enqueuer resume JOB --override-guard): workers then ignore the guard's
// decision, as gh-ost's no-throttle does. It holds who set it and until
// when (JSON), and expires by itself at that time.
func (l *Ledger) GuardOverrideKey(job string) string { return l.jobKey(job, "guard_override") }

// SetGuardOverride stores the override's value for ttl.
func (l *Ledger) SetGuardOverride(ctx context.Context, job string, value []byte, ttl time.Duration) error {
	if err := l.rdb.Set(ctx, l.GuardOverrideKey(job), value, ttl).Err(); err != nil {
		return fmt.Errorf("override the guard of %s: %w", job, err)
	}
	return nil
}

// ClearGuardOverride ends an override before it expires.
func (l *Ledger) ClearGuardOverride(ctx context.Context, job string) error {
	if err := l.rdb.Del(ctx, l.GuardOverrideKey(job)).Err(); err != nil {
		return fmt.Errorf("end the guard override of %s: %w", job, err)
	}
	return nil
}

// GuardOverride returns the override's value, nil when there is none.
func (l *Ledger) GuardOverride(ctx context.Context, job string) ([]byte, error) {
	b, err := l.rdb.Get(ctx, l.GuardOverrideKey(job)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the guard override of %s: %w", job, err)
	}
	return b, nil
}
