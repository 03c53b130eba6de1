// Package keyspace is ebb's one seam for key shapes: everything that knows
// what a job's key looks like lives here, and every other package handles
// keys only through its types. It owns the Key (one key tuple in
// PostgreSQL's text form, with a lossless encoding for Redis, JSON, logs and
// status), the Space (the job's key columns and the row-value SQL
// predicates and bind values built from them), the Slicing (how the key
// space is cut into range tasks, stored once at the first start as one
// opaque string), and the arithmetic a shape needs to split a range or
// sample keys inside it.
//
// Three shapes exist, chosen by Open from the key columns' types in the
// catalog: one integer column (smallint, integer, bigint), sliced by
// arithmetic, whose int64 values never leave this package; one uuid
// column, sliced into equal shares of the 128-bit space; and every key
// ordered only in the database (one text, varchar, numeric, date,
// timestamp or timestamptz column, and every composite key, with the
// primary key appended as a tie-breaker when the columns are not unique),
// compared as one row value in PostgreSQL and sliced at points read from
// its histogram, a TABLESAMPLE or calendar windows, stored in the slicing.
// A new shape is one more implementation of the unexported shape and
// slicer interfaces here, so no caller changes. It reads the database only
// through a Querier the caller passes (the catalog, the key's extremes,
// split points, a middle key); running the job's statements and talking
// to Redis are left to callers (batch, control, ledger). See README.md.
package keyspace
