package keyspace

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Space is a job's key: its columns and their shape. It builds the SQL
// fragments that select, order and bound keys, and the Go values bound to
// their placeholders. Three shapes exist: one integer column (New, or Open
// on a smallint, integer or bigint column), one uuid column and one text
// or varchar column (Open).
type Space struct {
	cols []string
	// sh is the shape's arithmetic; nil is the integer shape, so the zero
	// Space and New behave as they always have.
	sh shape
	// rows is the table's row estimate when Open read it (reltuples; 0 when
	// unknown): a uuid key is cut into about rows/task_span ranges.
	rows int64
}

// Querier is what Space needs of a database to read the catalog and the
// key's extremes: a *pgxpool.Pool, a *pgx.Conn or a pgx.Tx.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ErrShape is a key ebb cannot walk (yet).
var ErrShape = errors.New("unsupported key shape")

// TypeError is a key column of a type no shape walks; it is an ErrShape.
type TypeError struct {
	Column string
	// Type is the column's type as format_type writes it, e.g. "text".
	Type string
}

func (e *TypeError) Error() string {
	return fmt.Sprintf("key column %q is %s: %v: the key must be %s", e.Column, e.Type, ErrShape, KeyTypes)
}

// Is makes a TypeError an ErrShape.
func (e *TypeError) Is(target error) bool { return target == ErrShape }

// KeyTypes lists the column types a key may have, for messages.
const KeyTypes = "smallint, integer, bigint, uuid, text or varchar"

// ErrNoColumn is a key column the table does not have.
var ErrNoColumn = errors.New("no such key column")

// New returns the space of a key made of one integer column, without
// reading the catalog: the shape every job had before uuid keys, and what
// tests of integer jobs build. Open reads the column's type instead.
func New(columns ...string) (Space, error) {
	if len(columns) != 1 || columns[0] == "" {
		return Space{}, fmt.Errorf("key %v: %w: the key must be one column", columns, ErrShape)
	}
	return Space{cols: append([]string(nil), columns...)}, nil
}

// Open returns the space of the key columns of table (a quoted name),
// reading the column's type and the table's row estimate from the catalog
// in one query: an integer column (smallint, integer, bigint) is the
// integer shape, a uuid column the uuid shape, a text or varchar column the
// text shape (whose histogram bounds one more query reads). The error wraps ErrNoColumn
// when the column does not exist, and is a *TypeError (an ErrShape) naming
// the type for any other type. Start, plan, verify and every range task
// open the space this way, so the table itself says what its key is.
func Open(ctx context.Context, q Querier, table string, columns ...string) (Space, error) {
	s, err := New(columns...)
	if err != nil {
		return Space{}, err
	}
	var typ string
	var rows float64
	err = q.QueryRow(ctx, `
		SELECT format_type(a.atttypid, a.atttypmod), c.reltuples
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped AND a.attnum > 0`,
		table, columns[0]).Scan(&typ, &rows)
	if errors.Is(err, pgx.ErrNoRows) {
		return Space{}, fmt.Errorf("key column %q of %s: %w", columns[0], table, ErrNoColumn)
	}
	if err != nil {
		return Space{}, fmt.Errorf("read the type of key column %q of %s: %w", columns[0], table, err)
	}
	switch typ {
	case "smallint", "integer", "bigint":
	case "uuid":
		s.sh = uuidShape{}
	case "text":
		s.sh, err = openText(ctx, q, table, columns[0])
	default:
		if strings.HasPrefix(typ, "character varying") {
			s.sh, err = openText(ctx, q, table, columns[0])
			break
		}
		return Space{}, &TypeError{Column: columns[0], Type: typ}
	}
	if err != nil {
		return Space{}, err
	}
	// reltuples is -1 for a table never vacuumed or analyzed: unknown.
	s.rows = max(int64(rows), 0)
	return s, nil
}

// Origin is a key to plan statements from when the table has no rows to
// take one from: 0 for an integer key, the nil uuid for a uuid key.
func (s Space) Origin() Key { return s.shape().origin() }

// Shape names the key's shape ("int" or "uuid"), for messages and plan
// output; callers never branch on it.
func (s Space) Shape() string { return s.shape().name() }

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

// Of is the predicate "key in r" with r's bounds at $first: InRange, or
// After when r's lower bound is exclusive (text ranges past the first).
func (s Space) Of(r Range, first int) string {
	if r.After {
		return s.After(first)
	}
	return s.InRange(first)
}

// AnyOf is the predicate "key is one of a list", the list bound at $first
// as Array returns it.
func (s Space) AnyOf(first int) string {
	return fmt.Sprintf("%s = ANY($%d)", s.Columns(), first)
}

// Args returns the values to bind for keys, Width() per key, in order:
// int64s for the integer shape (so a custom sql: statement may still write
// $2::bigint - $1::bigint), the canonical text for a uuid, which pgx sends
// as text and PostgreSQL reads as the uuid its placeholder compares with.
func (s Space) Args(keys ...Key) ([]any, error) {
	out := make([]any, 0, len(keys)*len(s.cols))
	for _, k := range keys {
		v, err := s.shape().bind(k)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Array returns the one value AnyOf binds for a list of keys.
func (s Space) Array(keys []Key) (any, error) { return s.shape().array(keys) }

// CollectKeys reads rows that select Columns() into keys, and closes rows.
func (s Space) CollectKeys(rows pgx.Rows) ([]Key, error) { return s.shape().collect(rows) }

// Extremes reads the smallest and largest key of table (a quoted name),
// each through the key's index; ok is false when the table is empty.
func (s Space) Extremes(ctx context.Context, q Querier, table string) (lo, hi Key, ok bool, err error) {
	var mn, mx *string
	if err := q.QueryRow(ctx, s.shape().extremes(s.Columns(), table)).Scan(&mn, &mx); err != nil {
		return Key{}, Key{}, false, fmt.Errorf("read min/max of %s.%s: %w", table, s.cols[0], err)
	}
	if mn == nil || mx == nil {
		return Key{}, Key{}, false, nil
	}
	return NewKey(*mn), NewKey(*mx), true, nil
}

// Ahead is a key about n keys above k, for the sample bounds of an EXPLAIN
// (saturating at the top of the shape). For a uuid, "n keys" means the
// share of the 128-bit space n of the table's estimated rows take when
// random uuids spread evenly over it.
func (s Space) Ahead(k Key, n int64) (Key, error) { return s.shape().ahead(k, n, s.rows) }

// Halve splits [lo, hi] into two non-empty halves that cover it exactly
// once: what a range that keeps timing out at lo leaves to two new ranges.
// ok is false when [lo, hi] holds one key (or none) and cannot be split.
// It returns both halves rather than one midpoint because ranges are
// inclusive at both ends: the first half's last key and the second's first
// are two keys (mid and mid+1, for integers and for uuids as 128-bit
// numbers).
func (s Space) Halve(lo, hi Key) (first, second Range, ok bool, err error) {
	last, next, ok, err := s.shape().halve(lo, hi)
	if err != nil || !ok {
		return Range{}, Range{}, false, err
	}
	return Range{Lo: lo, Hi: last}, Range{Lo: next, Hi: hi}, true, nil
}

// Sample returns n keys drawn at random from [r.Lo, r.Hi] (keys of the
// shape, not necessarily of rows), for verify's spot checks.
func (s Space) Sample(r Range, n int) ([]Key, error) { return s.shape().sample(r, n) }

// shape is the space's arithmetic, the integer shape when none was set.
func (s Space) shape() shape {
	if s.sh == nil {
		return intShape{}
	}
	return s.sh
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
