package keyspace

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// shape is the arithmetic and the values of one key shape: everything Space
// and Slicing do differently for an integer, a uuid and a key ordered only
// in the database. A new shape is one more implementation (and a case in
// Open and DecodeSlicing); callers never see it.
type shape interface {
	// name is the shape's name in messages and plan output.
	name() string
	// origin is a key to plan statements from when the table is empty.
	origin() Key
	// bind is the values bound to a key's placeholders, one per column.
	bind(k Key) ([]any, error)
	// anyOf is the predicate "key is one of a list" over the quoted
	// columns, the list bound from $first as array binds it.
	anyOf(cols []string, first int) string
	// array is the values anyOf binds for a list of keys.
	array(keys []Key) ([]any, error)
	// selectList is the SELECT list that reads a key for collect.
	selectList(cols []string) string
	// collect reads rows that select selectList, and closes rows.
	collect(rows pgx.Rows) ([]Key, error)
	// extremes reads the key's smallest and largest value through its
	// index; ok is false when the table has no key.
	extremes(ctx context.Context, q Querier, cols []string, table string) (lo, hi Key, ok bool, err error)
	// ahead is a key about n keys above k; rows is the table's estimate.
	ahead(k Key, n, rows int64) (Key, error)
	// halve returns the last key of [lo, hi]'s first half and the first
	// key of its second; ok is false when it holds one key or none, or the
	// shape has no arithmetic to halve with (Space.Split then probes).
	halve(lo, hi Key) (last, next Key, ok bool, err error)
	// sample draws n keys of the shape at random from r.
	sample(r Range, n int) ([]Key, error)
	// slice cuts [from, to] into ranges of about span keys; rows is the
	// table's row estimate (0 when unknown).
	slice(from, to Key, span, rows int64) (Slicing, error)
}
