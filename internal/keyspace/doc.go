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
// Today the only shape is one integer column (smallint, integer, bigint),
// sliced by arithmetic; its int64 values never leave this package. A new
// shape (uuid, text, composite, time windows) is a new case of Space and
// Slicing here, with the same methods, so no caller changes. Talking to the
// database and to Redis is left to callers (batch, control, ledger): this
// package only builds SQL text and values. See README.md.
package keyspace
