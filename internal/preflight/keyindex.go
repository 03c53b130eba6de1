package preflight

import (
	"context"
	"fmt"
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
	names, err := indexesLeadingWith(ctx, r, cols)
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
	if r.Space.TieBreak() == 0 {
		return nil
	}
	// The tie-broken key still seeks the index on the job's columns, but
	// every read then sorts the rows that share a value.
	walked := r.Space.Names()
	if full, err := indexesLeadingWith(ctx, r, walked); err != nil {
		return err
	} else if len(full) == 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("no index leads with (%s): reads seek %v and sort rows that share a %s; CREATE INDEX CONCURRENTLY ON %s (%s) reads them in order",
			strings.Join(walked, ", "), names, cols[0], r.Spec.Table, strings.Join(walked, ", ")))
	}
	return nil
}

// indexesLeadingWith names the valid btree indexes without a predicate
// whose first columns are cols, in order, on the table or its partitions.
func indexesLeadingWith(ctx context.Context, r *Resources, cols []string) ([]string, error) {
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
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
