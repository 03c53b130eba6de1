package preflight

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

// checkKeyColumn refuses a key that is missing or not an integer: ranges are
// sliced by arithmetic on the key, which only integers support.
func checkKeyColumn(ctx context.Context, r *Resources) error {
	var typ string
	err := r.Pool.QueryRow(ctx, `
		SELECT format_type(a.atttypid, a.atttypmod)
		FROM pg_attribute a
		WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped AND a.attnum > 0`,
		r.Spec.QuotedTable(), r.Spec.Key).Scan(&typ)
	if errors.Is(err, pgx.ErrNoRows) {
		return refuse("key column %q does not exist in %s; check the key field", r.Spec.Key, r.Spec.Table)
	}
	if err != nil {
		return err
	}
	switch typ {
	case "smallint", "integer", "bigint":
		return nil
	}
	return refuse("key column %q of %s is %s; the key must be smallint, integer or bigint", r.Spec.Key, r.Spec.Table, typ)
}
