package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/batch"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/verify"
)

// RepairResult is what repair found and did.
type RepairResult struct {
	// Report is the full verify repair ran first.
	Report *VerifyReport `json:"report"`
	// Reopened are the ranges reset in the ledger and enqueued again, a
	// range split after timeouts with its halves.
	Reopened []int64 `json:"reopened,omitempty"`
	// Unrepairable are ranges whose wrong rows redoing the range would not
	// change: rows failing the check without matching the pending
	// predicate, a copy's rows that differ under on_conflict: nothing, or
	// target rows without a source row.
	Unrepairable []int64 `json:"unrepairable,omitempty"`
	// Why says which rows repair leaves wrong and what to do about them.
	Why string `json:"why,omitempty"`
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
	halves, err := c.ledger.SplitHalves(ctx, job)
	if err != nil {
		return res, err
	}
	for _, f := range r.Findings {
		if !redoable(spec, f) {
			res.Unrepairable = append(res.Unrepairable, f.Range.ID)
			continue
		}
		// The halves of a split are redone with their parent: the parent
		// walks its whole range again from its first key, and if it were
		// split again it would be handed its old halves, which must not
		// be marked done then. Redoing a row twice changes nothing.
		res.Reopened = append(res.Reopened, family(halves, f.Range.ID)...)
	}
	splits, err := c.ledger.Splits(ctx, job)
	if err != nil {
		return res, err
	}
	slices.Sort(res.Reopened)
	// The fence table's cursors go first: a range reopened in Redis but
	// still holding its cursor there would resume past the rows to redo.
	if err := batch.ForgetCursors(ctx, pool, spec.QuotedFenceTable(), job, res.Reopened); err != nil {
		return res, err
	}
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
	if why := unrepairable(spec, r); why != "" {
		res.Why = why
		what := "no range was reopened"
		if len(res.Reopened) > 0 {
			what = fmt.Sprintf("ranges %v were reopened for the rest", res.Reopened)
		}
		return res, fmt.Errorf("%w: %s (%s)", ErrNotRepairable, why, what)
	}
	if len(res.Reopened) == 0 {
		return res, fmt.Errorf("%w: %s", ErrNotRepairable, r.Problems[0])
	}
	return res, nil
}

// redoable reports whether redoing a range changes what verify found in
// it: pending rows are rewritten (or deleted), rows missing from a copy's
// target are inserted, and rows that differ there are overwritten only
// with on_conflict: update.
func redoable(spec *jobspec.Spec, f verify.Finding) bool {
	if spec.Copy != nil {
		return f.Missing > 0 || (f.Differing > 0 && spec.Copy.OnConflict == jobspec.ConflictUpdate)
	}
	return f.Pending > 0
}

// unrepairable says which wrong rows redoing ranges would leave wrong,
// and what to do about them; "" when there are none.
func unrepairable(spec *jobspec.Spec, r *VerifyReport) string {
	var why []string
	if r.Unselected > 0 {
		why = append(why, fmt.Sprintf("%d rows fail the check %q without matching the pending predicate %q, so the job's statement would not rewrite them; widen pending: or fix them by hand",
			r.Unselected, spec.Check, spec.Pending))
	}
	if spec.Copy != nil && r.Differing > 0 && spec.Copy.OnConflict != jobspec.ConflictUpdate {
		why = append(why, fmt.Sprintf("%d rows of %s differ from their source, and on_conflict: nothing keeps existing target rows; set copy.on_conflict: update, run enqueuer start again, then repair", r.Differing, spec.Copy.To))
	}
	if r.Extra > 0 {
		why = append(why, fmt.Sprintf("%d rows of %s have no source row in the job's ranges (deleted from the source after they were copied, or written by something else); a copy never deletes: remove them by hand if they should go", r.Extra, spec.Copy.To))
	}
	return strings.Join(why, "; ")
}
