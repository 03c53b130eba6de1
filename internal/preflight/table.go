package preflight

import (
	"context"
)

// checkTable refuses a table that does not exist (or is not visible on the
// search_path when unqualified).
func checkTable(ctx context.Context, r *Resources) error {
	var oid *uint32
	if err := r.Pool.QueryRow(ctx, "SELECT to_regclass($1)::oid", r.Spec.QuotedTable()).Scan(&oid); err != nil {
		return err
	}
	if oid == nil {
		return refuse("table %q does not exist; check the table field (schema-qualify it, e.g. public.orders)", r.Spec.Table)
	}
	return nil
}
