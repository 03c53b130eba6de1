package verify

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/batch"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
)

// WalkCopy proves a copy job: it walks the source's ranges in chunks as
// WalkRows does and compares each chunk with the same key range of the
// target: the number of source rows that match pending against the number
// of target rows, and a checksum of each side (bit_xor of a 64-bit hash
// of every row's copied columns as text, the source's expressions cast to
// the target columns' types so both sides print alike). A chunk whose
// counts or checksums differ is compared row by row, by key, to name the
// rows missing from the target, different there, or there without a
// source row: the bisection ends at the chunk, which is small. A chunk
// that differs is compared again in new transactions, and rows that then
// agree are counted as changed during verify.
//
// target is the target's database, nil when it is pool's: then both
// sides are read in one REPEATABLE READ snapshot and joined in SQL. Across
// two databases each side is read in its own snapshot and the rows of a
// mismatching chunk (key and hash) are compared in Go.
func WalkCopy(ctx context.Context, pool, target *pgxpool.Pool, spec *jobspec.Spec, space keyspace.Space, ranges []keyspace.Range, opt Options) (*Rows, error) {
	if spec.Copy == nil {
		return nil, fmt.Errorf("job %s is not a copy", spec.Name)
	}
	cmp, err := newCopyCompare(ctx, pool, target, spec, space)
	if err != nil {
		return nil, err
	}
	return walk(ctx, pool, spec, space, ranges, opt, cmp)
}

// copyCompare is the comparison of one copy job; see WalkCopy.
type copyCompare struct {
	w *rowWalk
	// target is the target's database when it is another one, else nil.
	target *pgxpool.Pool
	// Each statement comes in two bound forms, like the walk's: [0] from a
	// range's inclusive lower bound, [1] after a chunk's last key.
	// sums counts and checksums both sides of a chunk; diff lists the
	// keys where they differ (one database).
	sums, diff [2]string
	// srcSums, dstSums, srcRows and dstRows read one side each: its
	// count and checksum, its rows' keys and hashes (two databases).
	srcSums, dstSums, srcRows, dstRows [2]string
}

func newCopyCompare(ctx context.Context, pool, across *pgxpool.Pool, spec *jobspec.Spec, space keyspace.Space) (*copyCompare, error) {
	c := spec.Copy
	tpool := pool
	if across != nil {
		tpool = across
	}
	targetKey, ok := c.TargetKey(space.Names())
	if !ok {
		return nil, fmt.Errorf("copy %s: the key (%s) is not copied as it is; verify matches rows by it", spec.Name, strings.Join(space.Names(), ", "))
	}
	target, err := keyspace.Open(ctx, tpool, c.QuotedTo(), targetKey...)
	if err != nil {
		return nil, fmt.Errorf("copy target %s: %w", c.To, err)
	}
	if target.Shape() != space.Shape() || target.Width() != space.Width() {
		return nil, fmt.Errorf("copy target %s: its key (%s) is walked as %s, the source's (%s) as %s; verify bounds both sides with the same keys, so give them the same types",
			c.To, strings.Join(target.Names(), ", "), target.Shape(), strings.Join(space.Names(), ", "), space.Shape())
	}
	types, err := batch.ColumnTypes(ctx, tpool, c.QuotedTo())
	if err != nil {
		return nil, err
	}
	srcTypes, err := batch.ColumnTypes(ctx, pool, spec.QuotedTable())
	if err != nil {
		return nil, err
	}
	if err := batch.SameKey(srcTypes, types, space.Names(), targetKey); err != nil {
		return nil, fmt.Errorf("copy target %s: %w", c.To, err)
	}
	cols, exprs := c.CopyColumns()
	src, dst := make([]string, len(cols)), make([]string, len(cols))
	for i, col := range cols {
		t, ok := types[col]
		if !ok {
			return nil, fmt.Errorf("copy target %s has no column %q", c.To, col)
		}
		dst[i] = `"ebb target".` + pgx.Identifier{col}.Sanitize()
		src[i] = fmt.Sprintf("(%s)::%s", exprs[i], t.Type)
		if across != nil && !typeExists(ctx, pool, t.Type) {
			// A type only the target has (an enum, an extension's type):
			// both sides compare the value's text.
			src[i], dst[i] = fmt.Sprintf("(%s)::text", exprs[i]), dst[i]+"::text"
		}
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
	srcSel := func(bound string) string {
		return fmt.Sprintf("SELECT %s, %s AS h FROM %s WHERE %s AND (%s)", keyText(space.Names(), ""), hash(src), spec.QuotedTable(), bound, spec.Pending)
	}
	dstSel := func(bound string) string {
		return fmt.Sprintf(`SELECT %s, %s AS h FROM %s AS "ebb target" WHERE %s`, keyText(targetKey, `"ebb target".`), hash(dst), c.QuotedTo(), bound)
	}
	on, keys := make([]string, space.Width()), make([]string, space.Width())
	for i := range on {
		on[i] = fmt.Sprintf("s.k%d = t.k%d", i, i)
		keys[i] = fmt.Sprintf("coalesce(s.k%d, t.k%d)", i, i)
	}
	sum := func(sel string) string {
		return fmt.Sprintf("SELECT count(*), coalesce(bit_xor(x.h), 0) FROM (%s) x", sel)
	}
	cc := &copyCompare{target: across}
	for i, b := range [2][2]string{{space.From(1), target.From(1)}, {space.After(1), target.After(1)}} {
		s, t := srcSel(b[0]), dstSel(b[1])
		both := fmt.Sprintf("WITH s AS (%s), t AS (%s)\n", s, t)
		cc.sums[i] = both + "SELECT (SELECT count(*) FROM s), (SELECT coalesce(bit_xor(h), 0) FROM s), (SELECT count(*) FROM t), (SELECT coalesce(bit_xor(h), 0) FROM t)"
		cc.diff[i] = both + fmt.Sprintf(`SELECT %s, t.h IS NULL AS missing, s.h IS NOT NULL AND t.h IS NOT NULL AS differing, s.h IS NULL AS extra
FROM s FULL JOIN t ON %s WHERE s.h IS DISTINCT FROM t.h`, strings.Join(keys, ", "), strings.Join(on, " AND "))
		cc.srcSums[i], cc.dstSums[i], cc.srcRows[i], cc.dstRows[i] = sum(s), sum(t), s, t
	}
	return cc, nil
}

// typeExists reports whether the database of pool knows type typ.
func typeExists(ctx context.Context, pool *pgxpool.Pool, typ string) bool {
	var ok bool
	err := pool.QueryRow(ctx, "SELECT to_regtype($1) IS NOT NULL", typ).Scan(&ok)
	return err == nil && ok
}

// bound is 0 for a chunk read from a range's inclusive lower bound, 1 for
// one read after the last chunk's end.
func bound(after bool) int {
	if after {
		return 1
	}
	return 0
}

// chunk compares one chunk of source and target.
func (cc *copyCompare) chunk(ctx context.Context, lower, hi keyspace.Key, after bool) (chunkResult, error) {
	w := cc.w
	endQ := w.q.endFrom
	if after {
		endQ = w.q.endAfter
	}
	b := bound(after)
	var c chunkResult
	var srcN, srcSum, dstN, dstSum int64
	var args []any
	err := ReadOnly(ctx, w.pool, w.spec, func(tx pgx.Tx) error {
		c = chunkResult{lower: lower, after: after}
		if err := cc.portable(ctx, tx); err != nil {
			return err
		}
		var err error
		if c.end, c.last, err = w.chunkEnd(ctx, tx, endQ, lower, hi); err != nil {
			return err
		}
		if args, err = w.space.Args(lower, c.end); err != nil {
			return err
		}
		if cc.target != nil {
			return tx.QueryRow(ctx, cc.srcSums[b], args...).Scan(&srcN, &srcSum)
		}
		if err := tx.QueryRow(ctx, cc.sums[b], args...).Scan(&srcN, &srcSum, &dstN, &dstSum); err != nil {
			return err
		}
		if srcN == dstN && srcSum == dstSum {
			return nil
		}
		c.wrong, err = cc.diffRows(ctx, tx, cc.diff[b], args)
		return err
	})
	c.rows = srcN
	if err != nil || cc.target == nil {
		return c, err
	}
	if err := ReadOnly(ctx, cc.target, w.spec, func(tx pgx.Tx) error {
		if err := cc.portable(ctx, tx); err != nil {
			return err
		}
		return tx.QueryRow(ctx, cc.dstSums[b], args...).Scan(&dstN, &dstSum)
	}); err != nil {
		return c, fmt.Errorf("read copy target %s: %w", w.spec.Copy.To, err)
	}
	if srcN != dstN || srcSum != dstSum {
		c.wrong, err = cc.diffAcross(ctx, b, args)
	}
	return c, err
}

// recheck compares the chunk again in new transactions: rows that agree
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
	b := bound(c.after)
	args, err := w.space.Args(c.lower, c.end)
	if err != nil {
		return err
	}
	var again []wrongRow
	if cc.target != nil {
		again, err = cc.diffAcross(ctx, b, args)
	} else {
		err = ReadOnly(ctx, w.pool, w.spec, func(tx pgx.Tx) error {
			var err error
			again, err = cc.diffRows(ctx, tx, cc.diff[b], args)
			return err
		})
	}
	if err != nil {
		return err
	}
	w.keepStill(c, again)
	return nil
}

// diffAcross reads the keys and hashes of a chunk's rows on each side,
// each in its own transaction, and compares them by key.
func (cc *copyCompare) diffAcross(ctx context.Context, b int, args []any) ([]wrongRow, error) {
	w := cc.w
	var src, dst map[string]keyHash
	if err := ReadOnly(ctx, w.pool, w.spec, func(tx pgx.Tx) error {
		if err := cc.portable(ctx, tx); err != nil {
			return err
		}
		var err error
		src, err = cc.hashes(ctx, tx, cc.srcRows[b], args)
		return err
	}); err != nil {
		return nil, err
	}
	if err := ReadOnly(ctx, cc.target, w.spec, func(tx pgx.Tx) error {
		if err := cc.portable(ctx, tx); err != nil {
			return err
		}
		var err error
		dst, err = cc.hashes(ctx, tx, cc.dstRows[b], args)
		return err
	}); err != nil {
		return nil, fmt.Errorf("read copy target %s: %w", w.spec.Copy.To, err)
	}
	var out []wrongRow
	for k, s := range src {
		switch t, ok := dst[k]; {
		case !ok:
			out = append(out, wrongRow{key: s.key, missing: true})
		case t.h != s.h:
			out = append(out, wrongRow{key: s.key, differing: true})
		}
	}
	for k, t := range dst {
		if _, ok := src[k]; !ok {
			out = append(out, wrongRow{key: t.key, extra: true})
		}
	}
	slices.SortFunc(out, func(a, b wrongRow) int { return strings.Compare(a.key.Encode(), b.key.Encode()) })
	return out, nil
}

// portable sets batch.PortableText on a transaction of a comparison across
// two databases, as the worker's copy did: each side prints its values as
// the other would. One database needs none: both sides share a session.
func (cc *copyCompare) portable(ctx context.Context, tx pgx.Tx) error {
	if cc.target == nil {
		return nil
	}
	return batch.PortableText(ctx, tx)
}

type keyHash struct {
	key keyspace.Key
	h   int64
}

// hashes reads (key columns as text, hash) rows by key.
func (cc *copyCompare) hashes(ctx context.Context, tx pgx.Tx, sql string, args []any) (map[string]keyHash, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	list, err := collectKeyed(rows, cc.w.space.Width(), func(kh *keyHash) (*keyspace.Key, []any) { return &kh.key, []any{&kh.h} })
	if err != nil {
		return nil, err
	}
	out := make(map[string]keyHash, len(list))
	for _, kh := range list {
		out[kh.key.Encode()] = kh
	}
	return out, nil
}

// diffRows lists the rows of a chunk where source and target differ.
func (cc *copyCompare) diffRows(ctx context.Context, tx pgx.Tx, sql string, args []any) ([]wrongRow, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return collectKeyed(rows, cc.w.space.Width(), func(r *wrongRow) (*keyspace.Key, []any) {
		return &r.key, []any{&r.missing, &r.differing, &r.extra}
	})
}
