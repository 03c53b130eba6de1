package batch

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
)

// copyStatement inserts the batch's rows into the copy's target. ON
// CONFLICT on the target's key makes a redone batch change nothing: an
// existing row is kept, or with on_conflict: update overwritten only where
// it differs (so a redone batch writes no row twice either).
func copyStatement(spec *jobspec.Spec, space keyspace.Space) string {
	c := spec.Copy
	targets, exprs := c.CopyColumns()
	return fmt.Sprintf("INSERT INTO %s AS \"ebb target\" (%s) SELECT %s FROM %s WHERE %s AND (%s) %s",
		c.QuotedTo(), quoteAll(targets), strings.Join(exprs, ", "), spec.QuotedTable(), space.InRange(1), spec.Pending,
		onConflict(spec, space))
}

// copySource reads a batch's rows for a copy into another database: each
// copied value as PostgreSQL's text of it, which the target reads back with
// its column type's input function.
func copySource(spec *jobspec.Spec, space keyspace.Space) string {
	_, exprs := spec.Copy.CopyColumns()
	texts := make([]string, len(exprs))
	for i, e := range exprs {
		texts[i] = fmt.Sprintf("(%s)::text", e)
	}
	return fmt.Sprintf("SELECT %s FROM %s WHERE %s AND (%s)", strings.Join(texts, ", "), spec.QuotedTable(), space.InRange(1), spec.Pending)
}

// onConflict is a copy's ON CONFLICT clause on the target's key.
func onConflict(spec *jobspec.Spec, space keyspace.Space) string {
	c := spec.Copy
	targets, _ := c.CopyColumns()
	key, ok := c.TargetKey(space.Names())
	if !ok {
		key = spec.Key // preflight refuses a copy whose key is not carried
	}
	conflict := "DO NOTHING"
	if c.OnConflict == jobspec.ConflictUpdate {
		var set, old, now []string
		for _, t := range targets {
			if slices.Contains(key, t) {
				continue
			}
			q := pgx.Identifier{t}.Sanitize()
			set = append(set, fmt.Sprintf("%s = EXCLUDED.%s", q, q))
			old = append(old, "\"ebb target\"."+q)
			now = append(now, "EXCLUDED."+q)
		}
		if len(set) > 0 {
			conflict = fmt.Sprintf("DO UPDATE SET %s WHERE %s IS DISTINCT FROM %s", strings.Join(set, ", "), rowOf(old), rowOf(now))
		}
	}
	return fmt.Sprintf("ON CONFLICT (%s) %s", quoteAll(key), conflict)
}

// rowOf is a row value of cols; ROW() keeps one column a row too.
func rowOf(cols []string) string { return "ROW(" + strings.Join(cols, ", ") + ")" }

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = pgx.Identifier{n}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// acrossCopy is how a copy into another database writes: the batch's rows
// go into a temporary staging table with COPY, then one upsert moves them
// into the target, in one transaction on the target's database.
type acrossCopy struct {
	target *pgxpool.Pool
	// name is the target table as the job file names it, for errors.
	name string
	// stage is the staging table's name and stageCols its columns (text,
	// one per copied column); createStage makes it once per connection;
	// upsert moves its rows into the target.
	stage       string
	stageCols   []string
	createStage string
	upsert      string
}

// CopyAcross makes the executor's writes copy into another database,
// target (a pool the caller owns): each batch reads its rows from the
// job's database in a short read-only transaction, then, in one
// transaction on target with the same timeouts, COPYs them into a
// temporary staging table (ON COMMIT DELETE ROWS, so it is empty for the
// next batch) and upserts them into the target with ON CONFLICT on its
// key, so a redone batch changes nothing. It reads the target columns'
// types, which the upsert casts the staged text to.
func (e *Executor) CopyAcross(ctx context.Context, target *pgxpool.Pool, spec *jobspec.Spec, space keyspace.Space) error {
	c := spec.Copy
	types, err := ColumnTypes(ctx, target, c.QuotedTo())
	if err != nil {
		return err
	}
	targets, _ := c.CopyColumns()
	a := &acrossCopy{target: target, name: c.To}
	h := fnv.New32a()
	fmt.Fprint(h, spec.Name, c.To, targets)
	a.stage = fmt.Sprintf("ebb_stage_%08x", h.Sum32())
	defs, casts := make([]string, len(targets)), make([]string, len(targets))
	for i, t := range targets {
		tc, ok := types[t]
		if !ok {
			return fmt.Errorf("copy target %s has no column %q", c.To, t)
		}
		typ := tc.Type
		col := fmt.Sprintf("c%d", i)
		a.stageCols = append(a.stageCols, col)
		defs[i] = col + " text"
		casts[i] = fmt.Sprintf("s.%s::%s", col, typ)
	}
	a.createStage = fmt.Sprintf("CREATE TEMP TABLE IF NOT EXISTS %s (%s) ON COMMIT DELETE ROWS", a.stage, strings.Join(defs, ", "))
	a.upsert = fmt.Sprintf("INSERT INTO %s AS \"ebb target\" (%s) SELECT %s FROM %s s %s",
		c.QuotedTo(), quoteAll(targets), strings.Join(casts, ", "), a.stage, onConflict(spec, space))
	e.across = a
	return nil
}

// writeAcross copies one batch into the other database; see CopyAcross.
func (e *Executor) writeAcross(ctx context.Context, args []any) (int64, error) {
	a := e.across
	var rows [][]any
	if err := e.inTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := PortableText(ctx, tx); err != nil {
			return err
		}
		rs, err := tx.Query(ctx, e.st.Write, args...)
		if err != nil {
			return err
		}
		rows, err = pgx.CollectRows(rs, func(row pgx.CollectableRow) ([]any, error) {
			vals := make([]*string, len(a.stageCols))
			dest := make([]any, len(vals))
			for i := range vals {
				dest[i] = &vals[i]
			}
			if err := row.Scan(dest...); err != nil {
				return nil, err
			}
			out := make([]any, len(vals))
			for i, v := range vals {
				if v != nil {
					out[i] = *v
				}
			}
			return out, nil
		})
		return err
	}); err != nil {
		return 0, err
	}
	if len(rows) == 0 {
		return 0, nil
	}
	var n int64
	err := e.inTxOn(ctx, a.target, pgx.TxOptions{}, "", func(tx pgx.Tx) error {
		if err := PortableText(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, a.createStage); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{a.stage}, a.stageCols, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, a.upsert)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// Column is a table column's type as format_type writes it, modifiers
// included (numeric(10,2), varchar(20)), and its collation ("" for a type
// without one).
type Column struct {
	Type, Collation string
}

// ColumnTypes maps each column of table (a quoted name) to its type and
// collation.
func ColumnTypes(ctx context.Context, pool *pgxpool.Pool, table string) (map[string]Column, error) {
	rows, err := pool.Query(ctx, `SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), coalesce(c.collname::text, '')
FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`, table)
	if err != nil {
		return nil, fmt.Errorf("read the columns of %s: %w", table, err)
	}
	out := map[string]Column{}
	var name string
	var col Column
	if _, err := pgx.ForEachRow(rows, []any{&name, &col.Type, &col.Collation}, func() error {
		out[name] = col
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read the columns of %s: %w", table, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("table %s does not exist", table)
	}
	return out, nil
}

// SameKey checks that a copy's target key columns (dstCols of dst) have
// the types and collations of the source's (srcCols of src): both sides
// are bounded by the same key values and matched by them, which is only
// right when both sort and print them alike.
func SameKey(src, dst map[string]Column, srcCols, dstCols []string) error {
	for i, sc := range srcCols {
		a, b := src[sc], dst[dstCols[i]]
		if a != b {
			return fmt.Errorf("key column %s is %s%s in the source but %s is %s%s in the target: both sides are bounded and matched by the key, so give them the same type and collation",
				sc, a.Type, collation(a), dstCols[i], b.Type, collation(b))
		}
	}
	return nil
}

func collation(c Column) string {
	if c.Collation == "" {
		return ""
	}
	return " COLLATE " + pgx.Identifier{c.Collation}.Sanitize()
}

// PortableText makes a transaction print values the way any server reads
// them back, whatever the database's or role's settings: ISO dates, UTC
// times, exact floats. A copy into another database moves values as text
// and compares them as text, so both sides must print alike.
func PortableText(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT set_config('DateStyle', 'ISO, MDY', true), set_config('IntervalStyle', 'postgres', true),
set_config('TimeZone', 'UTC', true), set_config('extra_float_digits', '3', true)`)
	return err
}
