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

// WalkCopy proves a copy job: it walks the source's ranges in chunks as
// WalkRows does and compares each chunk with the same key range of the
// target, in the same REPEATABLE READ snapshot: the number of source rows
// that match pending against the number of target rows, and a checksum of
// each side (bit_xor of a 64-bit hash of every row's copied columns as
// text, the source's expressions cast to the target columns' types so
// both sides print alike). A chunk whose counts or checksums differ is
// compared row by row, by key, to name the rows missing from the target,
// different there, or there without a source row: the bisection ends at
// the chunk, which is small. A chunk that differs is compared again in a
// new transaction, and rows that then agree are counted as changed during
// verify.
func WalkCopy(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, space keyspace.Space, ranges []keyspace.Range, opt Options) (*Rows, error) {
	if spec.Copy == nil {
		return nil, fmt.Errorf("job %s is not a copy", spec.Name)
	}
	cmp, err := newCopyCompare(ctx, pool, spec, space)
	if err != nil {
		return nil, err
	}
	return walk(ctx, pool, spec, space, ranges, opt, cmp)
}

// copyCompare is the comparison of one copy job; see WalkCopy.
type copyCompare struct {
	w *rowWalk
	// sums counts and checksums both sides of a chunk; diff lists the
	// keys where they differ. Each in two bound forms, like the walk's.
	sumsFrom, sumsAfter, diffFrom, diffAfter string
}

func newCopyCompare(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, space keyspace.Space) (*copyCompare, error) {
	c := spec.Copy
	targetKey, ok := c.TargetKey(space.Names())
	if !ok {
		return nil, fmt.Errorf("copy %s: the key (%s) is not copied as it is; verify matches rows by it", spec.Name, strings.Join(space.Names(), ", "))
	}
	target, err := keyspace.Open(ctx, pool, c.QuotedTo(), targetKey...)
	if err != nil {
		return nil, fmt.Errorf("copy target %s: %w", c.To, err)
	}
	if target.Shape() != space.Shape() || target.Width() != space.Width() {
		return nil, fmt.Errorf("copy target %s: its key (%s) is walked as %s, the source's (%s) as %s; verify bounds both sides with the same keys, so give them the same types",
			c.To, strings.Join(target.Names(), ", "), target.Shape(), strings.Join(space.Names(), ", "), space.Shape())
	}
	types, err := columnTypes(ctx, pool, c.QuotedTo())
	if err != nil {
		return nil, err
	}
	cols, exprs := c.CopyColumns()
	src, dst := make([]string, len(cols)), make([]string, len(cols))
	for i, col := range cols {
		t, ok := types[col]
		if !ok {
			return nil, fmt.Errorf("copy target %s has no column %q", c.To, col)
		}
		src[i] = fmt.Sprintf("(%s)::%s", exprs[i], t)
		dst[i] = `"ebb target".` + pgx.Identifier{col}.Sanitize()
	}
	hash := func(vals []string) string {
		return fmt.Sprintf("hashtextextended(ROW(%s)::text, 0)", strings.Join(vals, ", "))
	}
	keyText := func(cols []string, qualifier string) string {
		out := make([]string, len(cols))
		for i, col := range cols {
			out[i] = fmt.Sprintf("%s%s::text AS k%d", qualifier, pgx.Identifier{col}.Sanitize(), i)
		}
		return strings.Join(out, ", ")
	}
	sides := func(srcBound, dstBound string) string {
		return fmt.Sprintf(`WITH s AS (SELECT %s, %s AS h FROM %s WHERE %s AND (%s)),
t AS (SELECT %s, %s AS h FROM %s AS "ebb target" WHERE %s)`,
			keyText(space.Names(), ""), hash(src), spec.QuotedTable(), srcBound, spec.Pending,
			keyText(targetKey, `"ebb target".`), hash(dst), c.QuotedTo(), dstBound)
	}
	sums := func(srcBound, dstBound string) string {
		return sides(srcBound, dstBound) + `
SELECT (SELECT count(*) FROM s), (SELECT coalesce(bit_xor(h), 0) FROM s), (SELECT count(*) FROM t), (SELECT coalesce(bit_xor(h), 0) FROM t)`
	}
	on, keys := make([]string, space.Width()), make([]string, space.Width())
	for i := range on {
		on[i] = fmt.Sprintf("s.k%d = t.k%d", i, i)
		keys[i] = fmt.Sprintf("coalesce(s.k%d, t.k%d)", i, i)
	}
	diff := func(srcBound, dstBound string) string {
		return sides(srcBound, dstBound) + fmt.Sprintf(`
SELECT %s, t.h IS NULL AS missing, s.h IS NOT NULL AND t.h IS NOT NULL AS differing, s.h IS NULL AS extra
FROM s FULL JOIN t ON %s WHERE s.h IS DISTINCT FROM t.h`, strings.Join(keys, ", "), strings.Join(on, " AND "))
	}
	return &copyCompare{
		sumsFrom: sums(space.From(1), target.From(1)), sumsAfter: sums(space.After(1), target.After(1)),
		diffFrom: diff(space.From(1), target.From(1)), diffAfter: diff(space.After(1), target.After(1)),
	}, nil
}

// columnTypes maps each column of table to its type as format_type writes
// it (with its modifiers: numeric(10,2), varchar(20)).
func columnTypes(ctx context.Context, pool *pgxpool.Pool, table string) (map[string]string, error) {
	rows, err := pool.Query(ctx, `SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped`, table)
	if err != nil {
		return nil, fmt.Errorf("read the columns of %s: %w", table, err)
	}
	out := map[string]string{}
	var name, typ string
	_, err = pgx.ForEachRow(rows, []any{&name, &typ}, func() error {
		out[name] = typ
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the columns of %s: %w", table, err)
	}
	return out, nil
}

// chunk compares one chunk of source and target in one transaction.
func (cc *copyCompare) chunk(ctx context.Context, lower, hi keyspace.Key, after bool) (chunkResult, error) {
	w := cc.w
	endQ, sumsQ, diffQ := w.q.endFrom, cc.sumsFrom, cc.diffFrom
	if after {
		endQ, sumsQ, diffQ = w.q.endAfter, cc.sumsAfter, cc.diffAfter
	}
	var c chunkResult
	err := ReadOnly(ctx, w.pool, w.spec, func(tx pgx.Tx) error {
		c = chunkResult{lower: lower, after: after}
		var err error
		if c.end, c.last, err = w.chunkEnd(ctx, tx, endQ, lower, hi); err != nil {
			return err
		}
		args, err := w.space.Args(lower, c.end)
		if err != nil {
			return err
		}
		var srcN, srcSum, dstN, dstSum int64
		if err := tx.QueryRow(ctx, sumsQ, args...).Scan(&srcN, &srcSum, &dstN, &dstSum); err != nil {
			return err
		}
		c.rows = srcN
		if srcN == dstN && srcSum == dstSum {
			return nil
		}
		c.wrong, err = cc.diff(ctx, tx, diffQ, args)
		return err
	})
	return c, err
}

// recheck compares the chunk again in a new transaction: rows that agree
// now were changed during verify.
func (cc *copyCompare) recheck(ctx context.Context, c *chunkResult) error {
	if len(c.wrong) == 0 {
		return nil
	}
	w := cc.w
	if w.opt.beforeRecheck != nil {
		keys := make([]keyspace.Key, len(c.wrong))
		for i, r := range c.wrong {
			keys[i] = r.key
		}
		w.opt.beforeRecheck(keys)
	}
	diffQ := cc.diffFrom
	if c.after {
		diffQ = cc.diffAfter
	}
	args, err := w.space.Args(c.lower, c.end)
	if err != nil {
		return err
	}
	var again []wrongRow
	if err := ReadOnly(ctx, w.pool, w.spec, func(tx pgx.Tx) error {
		var err error
		again, err = cc.diff(ctx, tx, diffQ, args)
		return err
	}); err != nil {
		return err
	}
	w.keepStill(c, again)
	return nil
}

// diff lists the rows of a chunk where source and target differ.
func (cc *copyCompare) diff(ctx context.Context, tx pgx.Tx, sql string, args []any) ([]wrongRow, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	n := cc.w.space.Width()
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (wrongRow, error) {
		vals := make([]string, n)
		var r wrongRow
		dest := make([]any, 0, n+3)
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		err := row.Scan(append(dest, &r.missing, &r.differing, &r.extra)...)
		r.key = keyspace.NewKey(vals...)
		return r, err
	})
}
