package control

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/chunks"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/ledger"
)

type bounds struct {
	min, max *int64
}

// readBounds reads min and max of the key; both use the key index.
func readBounds(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec) (bounds, error) {
	var b bounds
	table, key := spec.QuotedTable(), spec.QuotedKey()
	q := fmt.Sprintf("SELECT (SELECT min(%s) FROM %s)::bigint, (SELECT max(%s) FROM %s)::bigint", key, table, key, table)
	if err := pool.QueryRow(ctx, q).Scan(&b.min, &b.max); err != nil {
		return b, fmt.Errorf("read min/max of %s.%s: %w", spec.Table, spec.Key, err)
	}
	return b, nil
}

// resolve turns auto bounds into numbers.
func (b bounds) resolve(spec *jobspec.Spec) (from, to int64, err error) {
	if spec.Range.From.IsAuto() || spec.Range.To.IsAuto() {
		if b.min == nil {
			return 0, 0, ErrEmpty
		}
	}
	from, to = spec.Range.From.Value(), spec.Range.To.Value()
	if spec.Range.From.IsAuto() {
		from = *b.min
	}
	if spec.Range.To.IsAuto() {
		to = *b.max
	}
	if from > to {
		return 0, 0, fmt.Errorf("range resolves to [%d,%d], which is empty: %w", from, to, ErrEmpty)
	}
	return from, to, nil
}

// estimatePending asks the planner how many rows of the job's key range
// [from, to] the pending predicate matches, without counting them. Without
// the range the estimate covered the whole table, and a job over a slice of
// it showed progress and ETA against rows it will never touch.
func estimatePending(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, from, to int64) (int64, error) {
	var raw []byte
	// bigint casts: the bounds are int64 whatever the key column's type.
	q := fmt.Sprintf("EXPLAIN (FORMAT JSON) SELECT 1 FROM %s WHERE (%s) AND %s BETWEEN $1::bigint AND $2::bigint",
		spec.QuotedTable(), spec.Pending, spec.QuotedKey())
	if err := pool.QueryRow(ctx, q, from, to).Scan(&raw); err != nil {
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
	return int64(doc[0].Plan.Rows), nil
}

// rangeBounds is range id of the job as the fleet walks it: the half stored
// in splits when the range was split after repeated timeouts, else the
// slicing's own range.
func rangeBounds(meta ledger.Meta, splits map[int64][2]int64, id int64) (chunks.Range, error) {
	if b, ok := splits[id]; ok {
		return chunks.Range{ID: id, Lo: b[0], Hi: b[1]}, nil
	}
	return chunks.At(meta.From, meta.To, meta.Span, id)
}
