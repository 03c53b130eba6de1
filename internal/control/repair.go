package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"
)

// RepairResult is what repair found and did.
type RepairResult struct {
	// Report is the full verify repair ran first.
	Report *VerifyReport `json:"report"`
	// Reopened are the ranges reset in the ledger and enqueued again, a
	// range split after timeouts with its halves.
	Reopened []int64 `json:"reopened,omitempty"`
	// Unrepairable are ranges whose wrong rows all fail the check without
	// matching the pending predicate: the job's statement would not
	// rewrite them, so redoing the range would change nothing.
	Unrepairable []int64 `json:"unrepairable,omitempty"`
}

// ErrNotRepairable is a verify failure that redoing ranges cannot fix:
// rows the job's statement would not rewrite, or ranges not done yet.
var ErrNotRepairable = errors.New("repair cannot fix this")

// Repair runs a full verify, then reopens every range holding pending rows
// (ledger.Reopen) and enqueues it again: the fleet redoes it through the
// normal guarded path, where the pending predicate decides which rows are
// rewritten, and a second verify passes once the fleet is done. Rows that
// fail the check but are not pending are reported, not looped on. A job
// that verifies is left alone.
func (c *Control) Repair(ctx context.Context, pool *pgxpool.Pool, job string, opt VerifyOptions) (*RepairResult, error) {
	opt.Sample = false
	r, err := c.Verify(ctx, pool, job, opt)
	if r == nil || err == nil {
		return &RepairResult{Report: r}, err
	}
	res := &RepairResult{Report: r}
	spec, meta, err := c.storedJob(ctx, job)
	if err != nil {
		return res, err
	}
	if r.DryRun {
		return res, fmt.Errorf("%w: job %s is a dry run; clean it up and start it for real", ErrNotRepairable, job)
	}
	splits, err := c.ledger.Splits(ctx, job)
	if err != nil {
		return res, err
	}
	for _, f := range r.Findings {
		if f.Pending == 0 {
			res.Unrepairable = append(res.Unrepairable, f.Range.ID)
			continue
		}
		res.Reopened = append(res.Reopened, f.Range.ID)
		// The halves of a split lie inside their parent: they are redone
		// with it, or a parent redone up to its old split point would hand
		// the rest to halves still marked done.
		for id, half := range splits {
			if p, ok := meta.Slicing.Containing(half.Hi); ok && p == f.Range.ID {
				res.Reopened = append(res.Reopened, id)
			}
		}
	}
	slices.Sort(res.Reopened)
	if err := c.ledger.Reopen(ctx, job, res.Reopened); err != nil {
		return res, err
	}
	for _, id := range res.Reopened {
		rg, err := rangeBounds(meta, splits, id)
		if err != nil {
			return res, err
		}
		if _, err := c.enqueue(ctx, meta.Queue, job, rg); err != nil {
			return res, err
		}
	}
	c.log.InfoContext(ctx, "job repaired", slog.String("job", job), slog.Any("reopened", res.Reopened), slog.Any("unrepairable", res.Unrepairable))
	if r.Unselected > 0 {
		what := "no range was reopened"
		if len(res.Reopened) > 0 {
			what = fmt.Sprintf("ranges %v holding pending rows were reopened, these rows were not", res.Reopened)
		}
		return res, fmt.Errorf("%w: %d rows fail the check %q without matching the pending predicate %q, so the job's statement would not rewrite them (%s); widen pending: or fix them by hand",
			ErrNotRepairable, r.Unselected, spec.Check, spec.Pending, what)
	}
	if len(res.Reopened) == 0 {
		return res, fmt.Errorf("%w: %s", ErrNotRepairable, r.Problems[0])
	}
	return res, nil
}
