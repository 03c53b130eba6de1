package preflight

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
)

// checkKeyIndex refuses a key without a btree index that leads with its
// columns in the job's order: without one every read of a range is a table
// scan, and a composite key's row-value bounds seek only an index whose
// first columns are the key's. On a partitioned table the partitions'
// indexes count too, since the plans name those.
func checkKeyIndex(ctx context.Context, r *Resources) error {
	cols := []string(r.Spec.Key)
	rows, err := r.Pool.Query(ctx, `
		SELECT ic.relname
		FROM pg_index i
		JOIN pg_class ic ON ic.oid = i.indexrelid
		JOIN pg_am am ON am.oid = ic.relam
		WHERE (i.indrelid = to_regclass($1) OR i.indrelid IN (SELECT relid FROM pg_partition_tree(to_regclass($1))))
		  AND am.amname = 'btree' AND i.indisvalid AND i.indpred IS NULL AND i.indnkeyatts >= cardinality($2::text[])
		  AND ARRAY(SELECT a.attname::text
			FROM unnest((i.indkey::int2[])[0:cardinality($2::text[])-1]) WITH ORDINALITY AS ik(n, ord)
			LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ik.n
			ORDER BY ik.ord) = $2::text[]
		ORDER BY ic.relname`,
		r.Spec.QuotedTable(), cols)
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	if len(names) == 0 {
		what := "key column " + `"` + cols[0] + `"`
		if len(cols) > 1 {
			what = "key (" + strings.Join(cols, ", ") + ")"
		}
		return refuse("%s of %s has no valid btree index leading with it; create one first, e.g. CREATE INDEX CONCURRENTLY ON %s (%s)",
			what, r.Spec.Table, r.Spec.Table, strings.Join(r.Space.Names(), ", "))
	}
	r.KeyIndexes = names
	return nil
}
