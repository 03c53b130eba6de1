package leader

import "context"

// CheckAll runs one pass of the guard loop, so tests can drive a leader on a
// fake clock instead of waiting for Run's ticker.
func (g *Leader) CheckAll(ctx context.Context) { g.tick(ctx) }
