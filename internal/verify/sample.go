package verify

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
)

// Sampled is what a spot check found.
type Sampled struct {
	// Rows is how many rows were tested with the job's check.
	Rows int `json:"rows"`
	// Mismatches are the keys of sampled rows still pending or failing
	// the check (NULL is a failure).
	Mismatches []keyspace.Key `json:"mismatches,omitempty"`
}

// sampledRandoms is how many random keys of a range are spot-checked
// besides its first and last two.
const sampledRandoms = 3

// Sample spot-checks ranges against the job's pending predicate and check:
// a sampled row is wrong when it still is pending or fails the check. It
// reads the first two and
// last two rows of each, and the first row at or after a few random keys
// of it. It is the quick look (verify --sample); only WalkRows proves.
func Sample(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, space keyspace.Space, ranges []keyspace.Range) (*Sampled, error) {
	var sample []keyspace.Key
	seen := map[string]bool{}
	for _, rg := range ranges {
		keys, err := sampleRange(ctx, pool, spec, space, rg)
		if err != nil {
			return nil, fmt.Errorf("sample rows of %s range %s: %w", spec.Table, rg, err)
		}
		for _, k := range keys {
			if !seen[k.Encode()] {
				seen[k.Encode()] = true
				sample = append(sample, k)
			}
		}
	}
	out := &Sampled{Rows: len(sample)}
	if len(sample) == 0 {
		return out, nil
	}
	list, err := space.Array(sample)
	if err != nil {
		return nil, err
	}
	wrong := fmt.Sprintf("coalesce((%s), false)", spec.Pending)
	if spec.Check != "" {
		wrong += fmt.Sprintf(" OR NOT coalesce((%s), false)", spec.Check)
	}
	check := fmt.Sprintf("SELECT %s FROM %s WHERE %s AND (%s) ORDER BY %s", space.Select(), spec.QuotedTable(), space.AnyOf(1), wrong, space.Columns())
	err = ReadOnly(ctx, pool, spec, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, check, list...)
		if err != nil {
			return fmt.Errorf("test sampled rows: %w", err)
		}
		out.Mismatches, err = space.CollectKeys(rows)
		return err
	})
	return out, err
}

// sampleRange reads the keys of rows verify spot-checks in range rg: its
// first two, its last two, and the first row at or after each of a few
// random keys of the range, in one round trip.
func sampleRange(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, space keyspace.Space, rg keyspace.Range) ([]keyspace.Key, error) {
	randoms, err := space.Sample(rg, sampledRandoms)
	if err != nil {
		return nil, err
	}
	table, sel, cols := spec.QuotedTable(), space.Select(), space.Columns()
	parts := []string{
		fmt.Sprintf("(SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT 2)", sel, table, space.Of(rg, 1), cols),
		fmt.Sprintf("(SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT 2)", sel, table, space.Of(rg, 1), space.Descending()),
	}
	bounds := []keyspace.Key{rg.Lo, rg.Hi}
	for _, k := range randoms {
		parts = append(parts, fmt.Sprintf("(SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT 1)", sel, table, space.From(len(bounds)*space.Width()+1), cols))
		bounds = append(bounds, k, rg.Hi)
	}
	args, err := space.Args(bounds...)
	if err != nil {
		return nil, err
	}
	var keys []keyspace.Key
	err = ReadOnly(ctx, pool, spec, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, strings.Join(parts, " UNION "), args...)
		if err != nil {
			return err
		}
		keys, err = space.CollectKeys(rows)
		return err
	})
	return keys, err
}
