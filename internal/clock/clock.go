// Package clock owns ebb's waiting: one context-aware sleep that every loop
// between batches, retries and polls uses, so a cancelled context (a lost
// lease, a shutdown, an operator's Ctrl-C) always ends a wait at once. It
// imports nothing from ebb, so the worker side and the operator side may
// both use it.
package clock

import (
	"context"
	"time"
)

// Sleep waits for d or until ctx is done, whichever comes first, and
// returns ctx's error in the second case. A d of zero or less returns nil at
// once without looking at ctx: callers pass a configured pause such as
// "sleep: 0s", and the next I/O they do notices a done ctx anyway.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
