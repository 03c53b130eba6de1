package control

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
	"github.com/ebbhq/ebb/internal/preflight"
)

// PlanReport is what plan prints: the bounds, the estimate and the statements.
type PlanReport struct {
	Job   string `json:"job"`
	Table string `json:"table"`
	// Min and Max are the table's extremes, zero (null) when it is empty;
	// From and To the job's key space, zero when it holds no rows.
	Min           keyspace.Key `json:"min"`
	Max           keyspace.Key `json:"max"`
	From          keyspace.Key `json:"from"`
	To            keyspace.Key `json:"to"`
	EstimatedRows int64        `json:"estimated_rows"`
	EstimatedTodo int64        `json:"estimated_pending"`
	Ranges        int64        `json:"ranges"`
	// Shape is the key's shape and Key its columns as walked (with a
	// tie-breaker when the job's own are not unique); Slices are the
	// first and last few ranges, so the split points a start would store
	// can be seen before it.
	Shape     string           `json:"shape"`
	Key       []string         `json:"key"`
	Slices    []keyspace.Range `json:"slices,omitempty"`
	ReadSQL   string           `json:"read_sql"`
	WriteSQL  string           `json:"write_sql"`
	ReadPlan  string           `json:"read_plan"`
	WritePlan string           `json:"write_plan"`
	Notes     []string         `json:"notes,omitempty"`
}

// ErrEmpty means the job's key range holds no rows: nothing to backfill.
var ErrEmpty = errors.New("the table has no rows in the job's key range; nothing to backfill")

// ErrTooManyRanges means the job's key range slices into more range tasks
// than its max_ranges: plan and start refuse it before anything is stored
// or enqueued.
var ErrTooManyRanges = errors.New("too many range tasks")

// checkRanges refuses a slicing of more ranges than the job allows.
func checkRanges(spec *jobspec.Spec, from, to keyspace.Key, ranges int64) error {
	if ranges <= spec.RangeCap() {
		return nil
	}
	return fmt.Errorf("%w: the key range [%s, %s] in steps of task_span %d makes %d range tasks, over max_ranges %d; check range.from and range.to (a typo?), raise task_span, or raise max_ranges; nothing was stored or enqueued",
		ErrTooManyRanges, from, to, spec.TaskSpan, ranges, spec.RangeCap())
}

// Plan validates the job against the database without writing anything. A
// preflight refusal is a *preflight.RefusedError. target is the database
// of a copy into another database (copy.database_env), nil for any other
// job.
func Plan(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, target *pgxpool.Pool) (*PlanReport, error) {
	res, err := preflight.Run(ctx, pool, spec, target)
	if err != nil {
		return nil, err
	}
	p := &PlanReport{Job: spec.Name, Table: spec.Table, ReadSQL: res.Stmts.ReadFrom, WriteSQL: res.Stmts.Write, Notes: res.Notes,
		Shape: res.Space.Shape(), Key: res.Space.Names()}
	bounds, err := readBounds(ctx, pool, spec, res.Space)
	if err != nil {
		return nil, err
	}
	p.Min, p.Max = bounds.min, bounds.max
	if err := pool.QueryRow(ctx, "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass($1)", spec.Table).Scan(&p.EstimatedRows); err != nil {
		return nil, fmt.Errorf("estimate rows of %s: %w", spec.Table, err)
	}
	from, to, err := bounds.resolve(spec)
	if err == nil {
		p.From, p.To = from, to
		sl, err := res.Space.SliceTable(ctx, pool, spec.QuotedTable(), from, to, spec.TaskSpan, spec.Window.Window)
		if err != nil {
			return nil, err
		}
		p.Ranges = sl.Ranges()
		if err := checkRanges(spec, from, to, p.Ranges); err != nil {
			return nil, err
		}
		if p.Slices, err = someRanges(sl); err != nil {
			return nil, err
		}
		if p.EstimatedTodo, err = estimatePending(ctx, pool, spec, res.Space, from, to); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, ErrEmpty) {
		return nil, err
	}
	lo := p.From
	if lo.IsZero() {
		lo = res.Space.Origin() // an empty table: any key shows the plan
	}
	read, _, write, err := res.Samples(lo)
	if err != nil {
		return nil, err
	}
	if p.ReadPlan, err = preflight.Explain(ctx, res, read.SQL, read.Args...); err != nil {
		return nil, fmt.Errorf("explain read: %w", err)
	}
	if p.WritePlan, err = preflight.Explain(ctx, res, write.SQL, write.Args...); err != nil {
		return nil, fmt.Errorf("explain write: %w", err)
	}
	return p, nil
}

// slicesShown is how many ranges plan lists at each end of the slicing.
const slicesShown = 3

// someRanges is the first and last slicesShown ranges of sl.
func someRanges(sl keyspace.Slicing) ([]keyspace.Range, error) {
	n := sl.Ranges()
	var out []keyspace.Range
	for i := int64(0); i < n; i++ {
		if i == slicesShown && n > 2*slicesShown {
			i = n - slicesShown
		}
		r, err := sl.Range(i)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
