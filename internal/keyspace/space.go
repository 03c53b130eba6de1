package keyspace

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Space is a job's key: its columns and their shape. It builds the SQL
// fragments that select, order and bound keys, and the Go values bound to
// their placeholders. Today it has one shape, a single integer column.
type Space struct {
	cols []string
}

// Querier is what Space needs of a database to read the key's extremes:
// a *pgxpool.Pool, a *pgx.Conn or a pgx.Tx.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ErrShape is a key ebb cannot walk (yet).
var ErrShape = errors.New("unsupported key shape")

// New returns the space of a key made of these columns. Only one integer
// column is supported today (preflight refuses other column types).
func New(columns ...string) (Space, error) {
	if len(columns) != 1 || columns[0] == "" {
		return Space{}, fmt.Errorf("key %v: %w: the key must be one integer column", columns, ErrShape)
	}
	return Space{cols: append([]string(nil), columns...)}, nil
}

// Columns is the quoted column list, for SELECT and ORDER BY.
func (s Space) Columns() string {
	q := make([]string, len(s.cols))
	for i, c := range s.cols {
		q[i] = pgx.Identifier{c}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// Descending is the ORDER BY list that sorts keys from the largest down.
func (s Space) Descending() string {
	q := make([]string, len(s.cols))
	for i, c := range s.cols {
		q[i] = pgx.Identifier{c}.Sanitize() + " DESC"
	}
	return strings.Join(q, ", ")
}

// Width is how many placeholders one key takes: one per column.
func (s Space) Width() int { return len(s.cols) }

// InRange is the predicate "key in [lo, hi]" with lo at $first and hi right
// after it. One column keeps the BETWEEN ebb has always written (a custom
// sql: statement's $1 and $2 mean the same); several compare row values,
// which PostgreSQL turns into one index range scan.
func (s Space) InRange(first int) string {
	if len(s.cols) == 1 {
		return fmt.Sprintf("%s BETWEEN $%d AND $%d", s.Columns(), first, first+1)
	}
	return s.bounded(">=", first)
}

// From is the predicate "lo <= key <= hi", lo at $first: a range's first
// read, which includes its lower bound.
func (s Space) From(first int) string { return s.bounded(">=", first) }

// After is the predicate "cursor < key <= hi", the cursor at $first: every
// read after a checkpoint, strictly past the last committed key.
func (s Space) After(first int) string { return s.bounded(">", first) }

// AnyOf is the predicate "key is one of a list", the list bound at $first
// as Array returns it.
func (s Space) AnyOf(first int) string {
	return fmt.Sprintf("%s = ANY($%d)", s.Columns(), first)
}

// Args returns the values to bind for keys, Width() per key, in order.
func (s Space) Args(keys ...Key) ([]any, error) {
	out := make([]any, 0, len(keys)*len(s.cols))
	for _, k := range keys {
		v, err := s.integer(k)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Array returns the one value AnyOf binds for a list of keys.
func (s Space) Array(keys []Key) (any, error) {
	out := make([]int64, len(keys))
	for i, k := range keys {
		v, err := s.integer(k)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// CollectKeys reads rows that select Columns() into keys, and closes rows.
func (s Space) CollectKeys(rows pgx.Rows) ([]Key, error) {
	vals, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	keys := make([]Key, len(vals))
	for i, v := range vals {
		keys[i] = Int(v)
	}
	return keys, nil
}

// Extremes reads the smallest and largest key of table (a quoted name),
// each through the key's index; ok is false when the table is empty.
func (s Space) Extremes(ctx context.Context, q Querier, table string) (lo, hi Key, ok bool, err error) {
	var mn, mx *int64
	cols := s.Columns()
	sql := fmt.Sprintf("SELECT (SELECT min(%s) FROM %s)::bigint, (SELECT max(%s) FROM %s)::bigint", cols, table, cols, table)
	if err := q.QueryRow(ctx, sql).Scan(&mn, &mx); err != nil {
		return Key{}, Key{}, false, fmt.Errorf("read min/max of %s.%s: %w", table, s.cols[0], err)
	}
	if mn == nil || mx == nil {
		return Key{}, Key{}, false, nil
	}
	return Int(*mn), Int(*mx), true, nil
}

// Ahead is a key about n keys above k, for the sample bounds of an EXPLAIN
// (saturating at the top of the shape).
func (s Space) Ahead(k Key, n int64) (Key, error) {
	v, err := s.integer(k)
	if err != nil {
		return Key{}, err
	}
	if n > 0 && v > maxInt64-n {
		return Int(maxInt64), nil
	}
	return Int(v + n), nil
}

// Halve splits [lo, hi] into two non-empty halves that cover it exactly
// once: what a range that keeps timing out at lo leaves to two new ranges.
// ok is false when [lo, hi] holds one key (or none) and cannot be split.
// It returns both halves rather than one midpoint because ranges are
// inclusive at both ends: the first half's last key and the second's first
// are two keys (for integers, mid and mid+1).
func (s Space) Halve(lo, hi Key) (first, second Range, ok bool, err error) {
	a, err := s.integer(lo)
	if err != nil {
		return Range{}, Range{}, false, err
	}
	b, err := s.integer(hi)
	if err != nil {
		return Range{}, Range{}, false, err
	}
	if a >= b {
		return Range{}, Range{}, false, nil
	}
	mid := a + int64((uint64(b)-uint64(a))/2) // the width can exceed MaxInt64
	return Range{Lo: lo, Hi: Int(mid)}, Range{Lo: Int(mid + 1), Hi: hi}, true, nil
}

// Sample returns n keys drawn at random from [r.Lo, r.Hi] (keys of the
// shape, not necessarily of rows), for verify's spot checks.
func (s Space) Sample(r Range, n int) ([]Key, error) {
	lo, err := s.integer(r.Lo)
	if err != nil {
		return nil, err
	}
	hi, err := s.integer(r.Hi)
	if err != nil {
		return nil, err
	}
	out := make([]Key, n)
	for i := range out {
		// Width in uint64: [MinInt64, MaxInt64] does not fit an int64.
		w := uint64(hi) - uint64(lo)
		off := uint64(0)
		if w > 0 {
			off = rand.Uint64N(w)
		}
		out[i] = Int(int64(uint64(lo) + off))
	}
	return out, nil
}

// bounded is "(cols) op (lower) AND (cols) <= (upper)", lower at $first.
// One column needs no row value, and writing none keeps the statement text
// an integer job has always had.
func (s Space) bounded(op string, first int) string {
	cols, lo, hi := s.Columns(), s.placeholders(first), s.placeholders(first+len(s.cols))
	if len(s.cols) > 1 {
		cols, lo, hi = "("+cols+")", "("+lo+")", "("+hi+")"
	}
	return fmt.Sprintf("%s %s %s AND %s <= %s", cols, op, lo, cols, hi)
}

// placeholders is "$first, $first+1, …", one per column.
func (s Space) placeholders(first int) string {
	p := make([]string, len(s.cols))
	for i := range p {
		p[i] = "$" + strconv.Itoa(first+i)
	}
	return strings.Join(p, ", ")
}

// integer is the int64 of a one-column integer key.
func (s Space) integer(k Key) (int64, error) { return intOf(k) }

// intOf is the int64 of a one-column integer key.
func intOf(k Key) (int64, error) {
	if len(k.vals) != 1 {
		return 0, fmt.Errorf("key %s has %d columns, an integer key has 1: %w", k, len(k.vals), ErrBadKey)
	}
	v, err := strconv.ParseInt(k.vals[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("key %q is not an integer: %w", k.vals[0], ErrBadKey)
	}
	return v, nil
}

const maxInt64 = int64(^uint64(0) >> 1)
