package preflight

import (
	"context"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ebbhq/ebb/internal/batch"
)

// checkCopyTarget refuses a copy whose target cannot take the rows
// idempotently: the target table must exist with every column the copy
// fills, the key (tie-breaker included) must be copied as it is, and a
// unique index or primary key on exactly those target columns must exist,
// since ON CONFLICT on it is what makes a redone batch change nothing.
// Other kinds of job pass.
func checkCopyTarget(ctx context.Context, r *Resources) error {
	c := r.Spec.Copy
	if c == nil {
		return nil
	}
	db, where := r.Pool, ""
	if r.Target != nil {
		db, where = r.Target, " in the database of "+c.DatabaseEnv
	}
	var found bool
	var cols []string
	if err := db.QueryRow(ctx, copyTargetSQL, c.QuotedTo()).Scan(&found, &cols); err != nil {
		return err
	}
	if !found {
		return refuse("copy target %q does not exist%s; create it first (ebb copies rows into a table, it does not create one), or schema-qualify copy.to", c.To, where)
	}
	targets, _ := c.CopyColumns()
	var missing []string
	for _, t := range targets {
		if !slices.Contains(cols, t) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return refuse("copy target %s has no column %s; fix copy.columns or add the column", c.To, strings.Join(missing, ", "))
	}
	names := r.Space.Names()
	key, ok := c.TargetKey(names)
	if !ok {
		return refuse("copy.columns must copy the key (%s) as it is, e.g. %s: %s: rows are matched between %s and %s by it%s",
			strings.Join(names, ", "), names[len(names)-1], names[len(names)-1], r.Spec.Table, c.To, tieBreakNote(r.Space))
	}
	srcTypes, err := batch.ColumnTypes(ctx, r.Pool, r.Spec.QuotedTable())
	if err != nil {
		return err
	}
	dstTypes, err := batch.ColumnTypes(ctx, db, c.QuotedTo())
	if err != nil {
		return err
	}
	if err := batch.SameKey(srcTypes, dstTypes, names, key); err != nil {
		return refuse("copy target %s: %v", c.To, err)
	}
	var unique bool
	if err := db.QueryRow(ctx, uniqueOnSQL, c.QuotedTo(), key).Scan(&unique); err != nil {
		return err
	}
	if !unique {
		quoted := make([]string, len(key))
		for i, k := range key {
			quoted[i] = pgx.Identifier{k}.Sanitize()
		}
		return refuse("copy target %s has no primary key or unique index on (%s): each batch inserts with ON CONFLICT on it, so that a redone batch changes nothing; create one, e.g. CREATE UNIQUE INDEX CONCURRENTLY ON %s (%s)",
			c.To, strings.Join(key, ", "), c.QuotedTo(), strings.Join(quoted, ", "))
	}
	return nil
}

const (
	copyTargetSQL = `
SELECT to_regclass($1) IS NOT NULL,
       coalesce((SELECT array_agg(attname::text) FROM pg_attribute
                 WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped), '{}')`

	// An index ON CONFLICT can infer: unique, not deferrable, not partial, on plain
	// columns, its key columns (not INCLUDE ones) exactly the set given.
	uniqueOnSQL = `
SELECT EXISTS (
  SELECT 1 FROM pg_index i
  WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL
    AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text)
         FROM pg_attribute a
         WHERE a.attrelid = i.indrelid AND a.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1]))
        = (SELECT array_agg(k ORDER BY k) FROM unnest($2::text[]) k))`
)
