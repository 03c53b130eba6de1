package preflight

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ebbhq/ebb/internal/batch"
)

// checkKeyNulls refuses a nullable key column while some pending row has a
// NULL key: ebb walks keys in index order between bounds, and a NULL is
// inside no bound, so those rows would stay pending for good and verify
// could never pass. A nullable key with no such row passes with a note,
// since a row inserted later with a NULL key is not walked either. The
// probe is cheap: a btree index (3-key-index found one) holds NULLs, so
// "key IS NULL" is an index scan.
func checkKeyNulls(ctx context.Context, r *Resources) error {
	for _, col := range r.Space.Names() {
		if err := checkKeyColumnNulls(ctx, r, col); err != nil {
			return err
		}
	}
	return nil
}

// checkKeyColumnNulls is checkKeyNulls for one key column.
func checkKeyColumnNulls(ctx context.Context, r *Resources, col string) error {
	var notNull bool
	if err := r.Pool.QueryRow(ctx,
		`SELECT attnotnull FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped`,
		r.Spec.QuotedTable(), col).Scan(&notNull); err != nil {
		return fmt.Errorf("read whether key column %q of %s is NOT NULL: %w", col, r.Spec.Table, err)
	}
	if notNull {
		return nil
	}
	var pendingNull bool
	q := fmt.Sprintf("SELECT EXISTS (SELECT 1 FROM %s WHERE %s IS NULL AND (%s))", r.Spec.QuotedTable(), pgx.Identifier{col}.Sanitize(), r.Spec.Pending)
	if err := r.Pool.QueryRow(ctx, q).Scan(&pendingNull); err != nil {
		if batch.IsPermanent(batch.Classify(ctx, err)) {
			// The pending predicate is the operator's SQL: a typo in it
			// is a job to fix, not an outage.
			return refuse("looking for pending rows of %s with a NULL %q failed: %v; check the pending predicate", r.Spec.Table, col, err)
		}
		return fmt.Errorf("look for pending rows of %s with a NULL %q: %w", r.Spec.Table, col, err)
	}
	if pendingNull {
		return refuse("key column %q of %s is nullable and some pending rows have a NULL %s: ebb walks the key's index between bounds and never reaches a NULL key, so those rows would stay pending; fill the key first (then ALTER TABLE %s ALTER COLUMN %s SET NOT NULL), or exclude them: pending: (%s) AND %s IS NOT NULL",
			col, r.Spec.Table, col, r.Spec.Table, col, r.Spec.Pending, col)
	}
	r.Notes = append(r.Notes, fmt.Sprintf("key column %q is nullable: no pending row has a NULL key now, but a row written later with a NULL key is not walked; consider ALTER TABLE %s ALTER COLUMN %s SET NOT NULL",
		col, r.Spec.Table, col))
	return nil
}
