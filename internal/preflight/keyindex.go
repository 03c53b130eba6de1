package preflight

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// checkKeyIndex refuses a key without a btree index that leads with it:
// without one every read of a range is a table scan. On a partitioned table
// the partitions' indexes count too, since the plans name those.
func checkKeyIndex(ctx context.Context, r *Resources) error {
	rows, err := r.Pool.Query(ctx, `
		SELECT ic.relname
		FROM pg_index i
		JOIN pg_class ic ON ic.oid = i.indexrelid
		JOIN pg_am am ON am.oid = ic.relam
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
		WHERE (i.indrelid = to_regclass($1) OR i.indrelid IN (SELECT relid FROM pg_partition_tree(to_regclass($1)))) AND a.attname = $2
		  AND am.amname = 'btree' AND i.indisvalid AND i.indpred IS NULL
		ORDER BY ic.relname`,
		r.Spec.QuotedTable(), r.Spec.Key)
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return refuse("key column %q of %s has no valid btree index leading with it; create one first, e.g. CREATE INDEX CONCURRENTLY ON %s (%s)",
			r.Spec.Key, r.Spec.Table, r.Spec.Table, r.Spec.Key)
	}
	r.KeyIndexes = names
	return nil
}
