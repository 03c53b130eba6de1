// Package preflight checks a job against the live database before any row is
// written: the table exists, the key's columns are of a type ebb walks and
// lead a btree index, no pending row has a NULL key column, and the read and write
// statements would seek that index rather than scan the table. The
// key-column check opens the job's key space from the catalog; Resources
// carries it to the later checks and to plan and start. One check per
// file; they run in name order so output is stable.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/batch"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
)

// Resources is what a check may look at. Later checks see what earlier ones
// found (KeyIndexes), which is why checks run in a fixed order.
type Resources struct {
	Pool *pgxpool.Pool
	// Target is the database of a copy into another database; nil for
	// every other job.
	Target *pgxpool.Pool
	Spec   *jobspec.Spec
	// Space is the job's key, which writes the statements' key bounds:
	// an integer key until 2-key-column opens it from the catalog.
	Space keyspace.Space
	Stmts batch.Statements
	// KeyIndexes are the btree indexes whose first column is the key.
	KeyIndexes []string
	// Notes collects what checks want the operator to see.
	Notes []string
}

// Check is one preflight check.
type Check struct {
	Name string
	Fn   func(ctx context.Context, r *Resources) error
}

// Checks is the ordered registry. Names sort in run order.
var Checks = []Check{
	{Name: "1-table", Fn: checkTable},
	{Name: "2-key-column", Fn: checkKeyColumn},
	{Name: "3-copy-target", Fn: checkCopyTarget},
	{Name: "3-key-index", Fn: checkKeyIndex},
	{Name: "3-key-nulls", Fn: checkKeyNulls},
	{Name: "4-explain", Fn: checkExplain},
}

// RefusedError is a check's verdict that the job must not run as written.
type RefusedError struct {
	Check string
	Err   error
}

func (e *RefusedError) Error() string { return fmt.Sprintf("preflight %s: %v", e.Check, e.Err) }
func (e *RefusedError) Unwrap() error { return e.Err }

// IsRefused reports whether err is a preflight refusal (bad job or schema),
// as opposed to a database that could not be reached.
func IsRefused(err error) bool {
	var r *RefusedError
	return errors.As(err, &r)
}

// refuse marks an error as the operator's to fix.
func refuse(format string, args ...any) error { return &refusal{msg: fmt.Sprintf(format, args...)} }

type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }

// Run runs every check in name order and stops at the first failure, since
// later checks depend on earlier ones.
// target is the database of a copy into another database
// (copy.database_env), nil for every other job.
func Run(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, target *pgxpool.Pool) (*Resources, error) {
	if spec.Copy.Across() && target == nil {
		return nil, fmt.Errorf("job %s copies into the database named by %s, but no connection to it was given", spec.Name, spec.Copy.DatabaseEnv)
	}
	if len(spec.Key) == 0 {
		return nil, &RefusedError{Check: "0-key", Err: errors.New("the job names no key column")}
	}
	// Until 2-key-column opens the key from the catalog, a one-column key
	// is taken for an integer one.
	space, _ := keyspace.New(spec.Key...)
	r := &Resources{Pool: pool, Target: target, Spec: spec, Space: space, Stmts: batch.Build(spec, space)}
	checks := append([]Check(nil), Checks...)
	sort.Slice(checks, func(i, j int) bool { return checks[i].Name < checks[j].Name })
	for _, c := range checks {
		if err := c.Fn(ctx, r); err != nil {
			var rf *refusal
			if errors.As(err, &rf) {
				return r, &RefusedError{Check: c.Name, Err: err}
			}
			return r, fmt.Errorf("preflight %s: %w", c.Name, err)
		}
	}
	return r, nil
}
