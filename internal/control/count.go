package control

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/clock"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
	"github.com/ebbhq/ebb/internal/verify"
)

// CountReport is what a job would touch, range by range, counted without
// touching anything (plan --count).
type CountReport struct {
	Job  string `json:"job"`
	Kind string `json:"kind"`
	// Rows is how many rows of the job's ranges match pending: what the
	// job would update, copy or delete as things stand.
	Rows int64 `json:"rows"`
	// Read is how many rows the count read.
	Read   int64        `json:"read"`
	Ranges []RangeCount `json:"ranges"`
}

// RangeCount is one range's share of CountReport.Rows.
type RangeCount struct {
	Range keyspace.Range `json:"range"`
	Rows  int64          `json:"rows"`
}

// Count counts, range by range, the rows a job would touch: the slicing a
// first start would store, walked like verify (short read-only chunks, at
// the job file's rate or with its sleep between chunks), counting rows that
// match pending. Nothing is written, and nothing is stored in Redis: it
// works before the job starts, like plan.
func Count(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, progress func(verify.Progress)) (*CountReport, error) {
	out := &CountReport{Job: spec.Name, Kind: spec.Kind()}
	space, ranges, err := firstSlicing(ctx, pool, spec)
	if errors.Is(err, ErrEmpty) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	// Only pending decides what a batch touches: a check has no say here.
	counting := *spec
	counting.Check = ""
	rows, err := verify.WalkRows(ctx, pool, &counting, space, ranges, verify.Options{CountOnly: true, ProgressFunc: progress,
		PaceFunc: func(ctx context.Context, read int64, took time.Duration) error {
			return clock.Sleep(ctx, readPause(spec.Rate, spec.Sleep.D(), read, took))
		}})
	if err != nil {
		return nil, err
	}
	out.Rows, out.Read = rows.Pending, rows.Rows
	for _, f := range rows.Findings {
		out.Ranges = append(out.Ranges, RangeCount{Range: f.Range, Rows: f.Pending})
	}
	return out, nil
}

// firstSlicing is the key space and the ranges a first start of spec
// would store, read from the table now; ErrEmpty when the job's range
// holds no rows.
func firstSlicing(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec) (keyspace.Space, []keyspace.Range, error) {
	space, err := keyspace.Open(ctx, pool, spec.QuotedTable(), spec.Key...)
	if err != nil {
		return keyspace.Space{}, nil, err
	}
	bounds, err := readBounds(ctx, pool, spec, space)
	if err != nil {
		return keyspace.Space{}, nil, err
	}
	from, to, err := bounds.resolve(spec)
	if err != nil {
		return keyspace.Space{}, nil, err
	}
	sl, err := space.SliceTable(ctx, pool, spec.QuotedTable(), from, to, spec.TaskSpan, spec.Window.Window)
	if err != nil {
		return keyspace.Space{}, nil, err
	}
	if err := checkRanges(spec, from, to, sl.Ranges()); err != nil {
		return keyspace.Space{}, nil, err
	}
	ranges := make([]keyspace.Range, 0, sl.Ranges())
	for i := range sl.Ranges() {
		r, err := sl.Range(i)
		if err != nil {
			return keyspace.Space{}, nil, err
		}
		ranges = append(ranges, r)
	}
	return space, ranges, nil
}
