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
// on a smallint, integer or bigint column), one uuid column, and every key
// ordered only in the database (Open): one text, varchar, date, timestamp,
// timestamptz or numeric column, and every composite key.
type Space struct {
	cols []string
	// sh is the shape's arithmetic; nil is the integer shape, so the zero
	// Space and New behave as they always have.
	sh shape
	// rows is the table's row estimate when Open read it (reltuples; 0 when
	// unknown): uuid and ordered keys are cut into about rows/task_span
	// ranges.
	rows int64
	// pages is the table's size in pages when Open read it: a sample
	// reads at least minSamplePages of them.
	pages int64
	// tieBreak is how many columns Open appended to the job's own: the
	// primary key's, when the job's columns are not unique.
	tieBreak int
}

// Querier is what Space needs of a database to read the catalog and the
// key's extremes: a *pgxpool.Pool, a *pgx.Conn or a pgx.Tx.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// ErrShape is a key ebb cannot walk.
var ErrShape = errors.New("unsupported key shape")

// TypeError is a key column of a type no shape walks; it is an ErrShape.
type TypeError struct {
	Column string
	// Type is the column's type as format_type writes it, e.g. "jsonb".
	Type string
}

func (e *TypeError) Error() string {
	return fmt.Sprintf("key column %q is %s: %v: the key must be %s", e.Column, e.Type, ErrShape, KeyTypes)
}

// Is makes a TypeError an ErrShape.
func (e *TypeError) Is(target error) bool { return target == ErrShape }

// KeyTypes lists the column types a key may have, for messages.
const KeyTypes = "smallint, integer, bigint, numeric, uuid, text, varchar, date, timestamp or timestamptz (one column, or several in the order of an index)"

// ErrNoColumn is a key column the table does not have.
var ErrNoColumn = errors.New("no such key column")

// ColumnError names a key column the table does not have; it is an
// ErrNoColumn.
type ColumnError struct{ Column, Table string }

func (e *ColumnError) Error() string {
	return fmt.Sprintf("key column %q of %s: %v", e.Column, e.Table, ErrNoColumn)
}

// Is makes a ColumnError an ErrNoColumn.
func (e *ColumnError) Is(target error) bool { return target == ErrNoColumn }

// ErrNotUnique is a key whose columns do not identify a row, on a table
// without a primary key to break ties with.
var ErrNotUnique = errors.New("key is not unique and the table has no primary key to break ties")

// New returns the space of a key made of one integer column, without
// reading the catalog: the shape every job had before other key shapes,
// and what tests of integer jobs build. Open reads the column's type
// instead.
func New(columns ...string) (Space, error) {
	if len(columns) != 1 || columns[0] == "" {
		return Space{}, fmt.Errorf("key %v: %w: New makes a one-column integer key; Open reads any other", columns, ErrShape)
	}
	return Space{cols: append([]string(nil), columns...)}, nil
}

// Open returns the space of the key columns of table (a quoted name),
// reading the columns' types, the table's row estimate and its unique
// indexes from the catalog: one integer column is the integer shape, one
// uuid column the uuid shape, anything else the ordered shape (whose
// one-column histogram one more query reads). A key of the ordered shape
// whose columns no unique index covers gets the primary key's other
// columns appended as a tie-breaker (created_at becomes (created_at, id)),
// so rows that share a value are neither skipped nor done twice and a
// batch never grows past its size on ties; without a primary key that is
// ErrNotUnique. The error wraps ErrNoColumn when a column does not exist,
// and is a *TypeError (an ErrShape) naming the type for any other type.
// Start, plan, verify and every range task open the space this way, so
// the table itself says what its key is.
func Open(ctx context.Context, q Querier, table string, columns ...string) (Space, error) {
	if len(columns) == 0 {
		return Space{}, fmt.Errorf("key of %s: %w: name at least one column", table, ErrShape)
	}
	cat, err := readCatalog(ctx, q, table, columns)
	if err != nil {
		return Space{}, err
	}
	s := Space{cols: append([]string(nil), columns...), rows: cat.rows, pages: cat.pages}
	if len(columns) == 1 {
		switch cat.types[0] {
		case "smallint", "integer", "bigint":
			return s, nil
		case "uuid":
			s.sh = uuidShape{}
			return s, nil
		}
	}
	for i, t := range cat.types {
		if _, ok := orderedTypes[t]; !ok {
			return Space{}, &TypeError{Column: columns[i], Type: cat.formats[i]}
		}
	}
	types := cat.types
	if !cat.unique {
		extra, extraTypes, err := tieBreaker(ctx, q, table, columns)
		if err != nil {
			return Space{}, err
		}
		s.cols, types, s.tieBreak = append(s.cols, extra...), append(types, extraTypes...), len(extra)
	}
	sh := orderedShape{types: types}
	if len(s.cols) == 1 {
		if sh.hist, err = readHistogram(ctx, q, table, columns[0]); err != nil {
			return Space{}, err
		}
	}
	s.sh = sh
	return s, nil
}

// Names are the key's columns, the tie-breaker included.
func (s Space) Names() []string { return append([]string(nil), s.cols...) }

// TieBreak is how many primary key columns Open appended to the job's key
// columns because they are not unique (0 when they are).
func (s Space) TieBreak() int { return s.tieBreak }

// Origin is a key to plan statements from when the table has no rows to
// take one from: 0 for an integer key, the nil uuid for a uuid key.
func (s Space) Origin() Key { return s.shape().origin() }

// Shape names the key's shape ("int", "uuid", "text", "timestamptz",
// "composite", …), for messages and plan output; callers never branch on
// it.
func (s Space) Shape() string { return s.shape().name() }

// Columns is the quoted column list, for ORDER BY and row values.
func (s Space) Columns() string { return quoteList(s.cols, "") }

// Select is the SELECT list that reads keys for CollectKeys: the columns,
// as text where the shape keeps keys as text.
func (s Space) Select() string { return s.shape().selectList(s.cols) }

// Descending is the ORDER BY list that sorts keys from the largest down.
func (s Space) Descending() string { return quoteList(s.cols, " DESC") }

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
// After when r's lower bound is exclusive (ordered ranges past the first).
func (s Space) Of(r Range, first int) string {
	if r.After {
		return s.After(first)
	}
	return s.InRange(first)
}

// AnyOf is the predicate "key is one of a list", the list bound from
// $first as Array returns it (one value per placeholder).
func (s Space) AnyOf(first int) string { return s.shape().anyOf(s.cols, first) }

// Args returns the values to bind for keys, Width() per key, in order:
// int64s for the integer shape (so a custom sql: statement may still write
// $2::bigint - $1::bigint), the canonical text for a uuid, each column's
// text for an ordered key: pgx sends a string as text, and PostgreSQL reads
// it as the type of the column its placeholder is compared with.
func (s Space) Args(keys ...Key) ([]any, error) {
	out := make([]any, 0, len(keys)*len(s.cols))
	for _, k := range keys {
		v, err := s.shape().bind(k)
		if err != nil {
			return nil, err
		}
		out = append(out, v...)
	}
	return out, nil
}

// Array returns the values AnyOf binds for a list of keys.
func (s Space) Array(keys []Key) ([]any, error) { return s.shape().array(keys) }

// CollectKeys reads rows that select Select() into keys, and closes rows.
func (s Space) CollectKeys(rows pgx.Rows) ([]Key, error) { return s.shape().collect(rows) }

// Extremes reads the smallest and largest key of table (a quoted name),
// each through the key's index; ok is false when the table is empty.
func (s Space) Extremes(ctx context.Context, q Querier, table string) (lo, hi Key, ok bool, err error) {
	lo, hi, ok, err = s.shape().extremes(ctx, q, s.cols, table)
	if err != nil {
		return Key{}, Key{}, false, fmt.Errorf("read the smallest and largest key (%s) of %s: %w", s.Columns(), table, err)
	}
	return lo, hi, ok, nil
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
