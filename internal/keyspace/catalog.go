package keyspace

import (
	"context"
	"fmt"
)

// catalog is what Open reads about a key from the catalog in one query.
type catalog struct {
	// types are the columns' base types ("timestamp with time zone"),
	// formats the same with their modifiers for messages.
	types, formats []string
	// unique is whether a valid unique index without a predicate has
	// all its key columns among the key's columns.
	unique bool
	// rows is the table's row estimate, 0 when unknown; pages its size
	// in pages as of the last VACUUM or ANALYZE.
	rows, pages int64
}

// readCatalog reads the key columns' types, whether they are unique and
// the table's row estimate.
func readCatalog(ctx context.Context, q Querier, table string, columns []string) (catalog, error) {
	rows, err := q.Query(ctx, `
		SELECT k.name, a.atttypid::regtype::text, format_type(a.atttypid, a.atttypmod),
			EXISTS (SELECT 1 FROM pg_index i
				WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
				AND NOT EXISTS (SELECT 1 FROM unnest((i.indkey::int2[])[0:i.indnkeyatts-1]) AS ik(n)
					WHERE NOT EXISTS (SELECT 1 FROM pg_attribute ia
						WHERE ia.attrelid = i.indrelid AND ia.attnum = ik.n AND ia.attname = ANY($2)))),
			greatest((SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)), 0)::bigint,
			(SELECT relpages FROM pg_class WHERE oid = to_regclass($1))::bigint
		FROM unnest($2::text[]) WITH ORDINALITY AS k(name, ord)
		LEFT JOIN pg_attribute a ON a.attrelid = to_regclass($1) AND a.attname = k.name AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY k.ord`, table, columns)
	if err != nil {
		return catalog{}, fmt.Errorf("read the key columns %v of %s: %w", columns, table, err)
	}
	defer rows.Close()
	var c catalog
	for rows.Next() {
		var name string
		var typ, format *string
		if err := rows.Scan(&name, &typ, &format, &c.unique, &c.rows, &c.pages); err != nil {
			return catalog{}, fmt.Errorf("read the key columns %v of %s: %w", columns, table, err)
		}
		if typ == nil {
			return catalog{}, &ColumnError{Column: name, Table: table}
		}
		c.types, c.formats = append(c.types, *typ), append(c.formats, *format)
	}
	if err := rows.Err(); err != nil {
		return catalog{}, fmt.Errorf("read the key columns %v of %s: %w", columns, table, err)
	}
	return c, nil
}

// tieBreaker returns the primary key's columns that are not among the
// key's, with their base types: appended to a key that is not unique,
// they make every key tuple name one row.
func tieBreaker(ctx context.Context, q Querier, table string, columns []string) (cols, types []string, err error) {
	rows, err := q.Query(ctx, `
		SELECT a.attname, a.atttypid::regtype::text
		FROM pg_index i, unnest((i.indkey::int2[])[0:i.indnkeyatts-1]) WITH ORDINALITY AS ik(n, ord)
		JOIN pg_attribute a ON a.attnum = ik.n
		WHERE i.indrelid = to_regclass($1) AND i.indisprimary AND a.attrelid = i.indrelid AND NOT a.attname = ANY($2)
		ORDER BY ik.ord`, table, columns)
	if err != nil {
		return nil, nil, fmt.Errorf("read the primary key of %s: %w", table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var c, t string
		if err := rows.Scan(&c, &t); err != nil {
			return nil, nil, fmt.Errorf("read the primary key of %s: %w", table, err)
		}
		if _, ok := orderedTypes[t]; !ok {
			return nil, nil, fmt.Errorf("primary key column %q of %s, the tie-breaker of key %v, is %s: %w", c, table, columns, t, ErrShape)
		}
		cols, types = append(cols, c), append(types, t)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read the primary key of %s: %w", table, err)
	}
	if len(cols) == 0 {
		return nil, nil, fmt.Errorf("key %v of %s: %w: add a unique index on the key, or name a unique column after it (key: [%s, id])",
			columns, table, ErrNotUnique, columns[0])
	}
	return cols, types, nil
}

// readHistogram reads the histogram bounds of a one-column key as text,
// ascending in the column's order; none when the table was never analyzed
// (or holds too few distinct values for a histogram).
func readHistogram(ctx context.Context, q Querier, table, column string) ([]Key, error) {
	var hist []string
	err := q.QueryRow(ctx, `
		SELECT coalesce((SELECT s.histogram_bounds::text::text[]
			FROM pg_stats s JOIN pg_class c ON c.relname = s.tablename
			JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = s.schemaname
			WHERE c.oid = to_regclass($1) AND s.attname = $2 AND NOT s.inherited), '{}')`,
		table, column).Scan(&hist)
	if err != nil {
		return nil, fmt.Errorf("read the histogram of key column %q of %s: %w", column, table, err)
	}
	keys := make([]Key, len(hist))
	for i, v := range hist {
		keys[i] = NewKey(v)
	}
	return keys, nil
}
