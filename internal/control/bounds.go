package control

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/batch"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
	"github.com/ebbhq/ebb/internal/ledger"
)

// bounds are the smallest and largest key in the table; ok is false when
// it is empty.
type bounds struct {
	min, max keyspace.Key
	ok       bool
}

// readBounds reads min and max of the key; both use the key index.
func readBounds(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, space keyspace.Space) (bounds, error) {
	var b bounds
	var err error
	b.min, b.max, b.ok, err = space.Extremes(ctx, pool, spec.QuotedTable())
	return b, err
}

// resolve turns auto bounds into the table's extremes.
func (b bounds) resolve(spec *jobspec.Spec) (from, to keyspace.Key, err error) {
	if (spec.Range.From.IsAuto() || spec.Range.To.IsAuto()) && !b.ok {
		return keyspace.Key{}, keyspace.Key{}, ErrEmpty
	}
	from, to = b.min, b.max
	if !spec.Range.From.IsAuto() {
		from = spec.Range.From.Key()
	}
	if !spec.Range.To.IsAuto() {
		to = spec.Range.To.Key()
	}
	if keyspace.Inverted(from, to) {
		return keyspace.Key{}, keyspace.Key{}, fmt.Errorf("range resolves to [%s,%s], which is empty: %w", from, to, ErrEmpty)
	}
	return from, to, nil
}

// estimatePending asks the planner how many rows of the job's key range
// [from, to] the pending predicate matches, without counting them. Without
// the range the estimate covered the whole table, and a job over a slice of
// it showed progress and ETA against rows it will never touch.
func estimatePending(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, space keyspace.Space, from, to keyspace.Key) (int64, error) {
	args, err := space.Args(from, to)
	if err != nil {
		return 0, fmt.Errorf("estimate pending rows of %s: %w", spec.Table, err)
	}
	var raw []byte
	q := fmt.Sprintf("EXPLAIN (FORMAT JSON) SELECT 1 FROM %s WHERE (%s) AND %s",
		spec.QuotedTable(), spec.Pending, space.InRange(1))
	if err := pool.QueryRow(ctx, q, args...).Scan(&raw); err != nil {
		return 0, fmt.Errorf("estimate pending rows of %s: %w", spec.Table, err)
	}
	var doc []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		} `json:"Plan"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || len(doc) == 0 {
		return 0, fmt.Errorf("estimate pending rows of %s: unreadable plan", spec.Table)
	}
	planned := int64(doc[0].Plan.Rows)
	if planned > exactCountBelow {
		return planned, nil
	}
	// The planner guesses a table it never analyzed (a new one, or one
	// just filled) from its pages alone: 13 pending rows in a new table
	// of 1,000 with 750 pending, and more pending rows than the table
	// held in a trial. Where it thinks the rows are few, count them: a
	// read of at most about that many rows, under the job's timeouts.
	var exact int64
	err = pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := batch.SetLocal(ctx, tx, spec); err != nil {
			return err
		}
		return tx.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE (%s) AND %s", spec.QuotedTable(), spec.Pending, space.InRange(1)), args...).Scan(&exact)
	})
	if err != nil {
		return planned, nil // the guess stands; the count was only a refinement
	}
	return exact, nil
}

// exactCountBelow is the planner's estimate under which the pending rows
// are counted instead.
const exactCountBelow = 100_000

// rangeBounds is range id of the job as the fleet walks it: the half stored
// in splits when the range was split after repeated timeouts, else the
// slicing's own range.
func rangeBounds(meta ledger.Meta, splits map[int64]keyspace.Range, id int64) (keyspace.Range, error) {
	if r, ok := splits[id]; ok {
		return r, nil
	}
	return meta.Slicing.Range(id)
}
