// Package verify reads a job's rows to prove it finished: WalkRows reads
// every row of the job's ranges in short read-only chunks and counts the
// rows still pending or failing the job's check; Sample spot-checks a few
// rows per range, the quick look. It never writes, and it knows nothing
// of Redis: which ranges to walk, how to pace and where to keep the report
// are the caller's (internal/control).
package verify
