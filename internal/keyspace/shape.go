package keyspace

import "github.com/jackc/pgx/v5"

// shape is the arithmetic and the values of one key shape: everything Space
// and Slicing do differently for an integer and a uuid key. A new shape is
// one more implementation (and a case in Open and DecodeSlicing); callers
// never see it.
type shape interface {
	// name is the shape's name in a stored slicing and in messages.
	name() string
	// origin is a key to plan statements from when the table is empty.
	origin() Key
	// bind is the value bound to a placeholder for one key.
	bind(k Key) (any, error)
	// array is the one value bound for "key = ANY($n)".
	array(keys []Key) (any, error)
	// collect reads rows that select the key columns, and closes rows.
	collect(rows pgx.Rows) ([]Key, error)
	// extremes is a query of the key's smallest and largest value as text
	// (NULLs when the table is empty), each read through the key's index.
	extremes(cols, table string) string
	// ahead is a key about n keys above k; rows is the table's estimate.
	ahead(k Key, n, rows int64) (Key, error)
	// halve returns the last key of [lo, hi]'s first half and the first
	// key of its second; ok is false when it holds one key or none.
	halve(lo, hi Key) (last, next Key, ok bool, err error)
	// sample draws n keys of the shape at random from r.
	sample(r Range, n int) ([]Key, error)
	// slice cuts [from, to] into ranges of about span keys; rows is the
	// table's row estimate (0 when unknown).
	slice(from, to Key, span, rows int64) (Slicing, error)
}
