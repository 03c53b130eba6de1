package control

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/chunks"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/preflight"
)

// PlanReport is what plan prints: the bounds, the estimate and the statements.
type PlanReport struct {
	Job           string   `json:"job"`
	Table         string   `json:"table"`
	Min           *int64   `json:"min"`
	Max           *int64   `json:"max"`
	From          int64    `json:"from"`
	To            int64    `json:"to"`
	EstimatedRows int64    `json:"estimated_rows"`
	EstimatedTodo int64    `json:"estimated_pending"`
	Ranges        int64    `json:"ranges"`
	ReadSQL       string   `json:"read_sql"`
	WriteSQL      string   `json:"write_sql"`
	ReadPlan      string   `json:"read_plan"`
	WritePlan     string   `json:"write_plan"`
	Notes         []string `json:"notes,omitempty"`
}

// ErrEmpty means the job's key range holds no rows: nothing to backfill.
var ErrEmpty = errors.New("the table has no rows in the job's key range; nothing to backfill")

// Plan validates the job against the database without writing anything. A
// preflight refusal is a *preflight.RefusedError.
func Plan(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec) (*PlanReport, error) {
	res, err := preflight.Run(ctx, pool, spec)
	if err != nil {
		return nil, err
	}
	p := &PlanReport{Job: spec.Name, Table: spec.Table, ReadSQL: res.Stmts.Read, WriteSQL: res.Stmts.Write, Notes: res.Notes}
	bounds, err := readBounds(ctx, pool, spec)
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
		if p.Ranges, err = chunks.Count(from, to, spec.TaskSpan); err != nil {
			return nil, err
		}
		if p.EstimatedTodo, err = estimatePending(ctx, pool, spec, from, to); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, ErrEmpty) {
		return nil, err
	}
	lo := p.From
	if p.ReadPlan, err = preflight.Explain(ctx, res, res.Stmts.Read, lo, lo+int64(spec.ReadBatch), spec.ReadBatch); err != nil {
		return nil, fmt.Errorf("explain read: %w", err)
	}
	if p.WritePlan, err = preflight.Explain(ctx, res, res.Stmts.Write, lo, lo+int64(spec.Batch.Max)); err != nil {
		return nil, fmt.Errorf("explain write: %w", err)
	}
	return p, nil
}
