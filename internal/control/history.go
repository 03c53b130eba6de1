package control

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ebbhq/ebb/internal/guard"
)

// History returns up to n of the job's guard changes (state or rate
// factor), newest first; all of them kept (ledger.HistoryKept) with n <= 0.
func (c *Control) History(ctx context.Context, job string, n int) ([]guard.Change, error) {
	if _, err := c.Status(ctx, job); err != nil {
		return nil, err // an unknown job says so
	}
	raw, err := c.ledger.History(ctx, job, n)
	if err != nil {
		return nil, err
	}
	out := make([]guard.Change, 0, len(raw))
	for _, b := range raw {
		var ch guard.Change
		if err := json.Unmarshal(b, &ch); err != nil {
			return nil, fmt.Errorf("guard history of %s holds %q, not an entry; was it written by hand?", job, b)
		}
		out = append(out, ch)
	}
	return out, nil
}

// Series returns up to n of the job's measured points (rows/s, guard state
// and signals at the guard's checks), oldest first.
func (c *Control) Series(ctx context.Context, job string, n int) ([]guard.Point, error) {
	if _, err := c.Status(ctx, job); err != nil {
		return nil, err
	}
	raw, err := c.ledger.Series(ctx, job, int64(n))
	if err != nil {
		return nil, err
	}
	out := make([]guard.Point, 0, len(raw))
	for i := len(raw) - 1; i >= 0; i-- {
		var p guard.Point
		if err := json.Unmarshal(raw[i], &p); err != nil {
			continue // one unreadable point does not hide the chart
		}
		out = append(out, p)
	}
	return out, nil
}
