// Package batch runs one step of a backfill against PostgreSQL: a narrow,
// key-ordered read of pending keys, and one short write transaction with
// SET LOCAL lock_timeout and statement_timeout that commits or rolls back as a
// whole. It also classifies database errors as transient or permanent, in one
// place (errors.go). Retrying and checkpointing are the caller's business.
package batch

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/jobspec"
)

// Statements are the SQL a job runs. Read takes ($1 first key, $2 last key,
// $3 limit); Write takes ($1, $2) = inclusive bounds of one batch.
type Statements struct {
	Read  string
	Write string
}

// Build turns a spec into its statements. Identifiers are quoted; the set and
// pending expressions are the operator's SQL and go in as written, which is
// why the job spec never comes from anyone without write access to the job.
func Build(spec *jobspec.Spec) Statements {
	table, key := spec.QuotedTable(), spec.QuotedKey()
	st := Statements{
		Read: fmt.Sprintf("SELECT %s FROM %s WHERE %s >= $1 AND %s <= $2 AND (%s) ORDER BY %s LIMIT $3",
			key, table, key, key, spec.Pending, key),
		Write: spec.SQL,
	}
	if !spec.RawSQL() {
		st.Write = fmt.Sprintf("UPDATE %s SET %s WHERE %s BETWEEN $1 AND $2 AND (%s)",
			table, spec.Set, key, spec.Pending)
	}
	return st
}

// Executor runs a job's reads and writes on a pool the caller owns.
type Executor struct {
	pool   *pgxpool.Pool
	st     Statements
	lockTO string
	stmtTO string
	// dryRun rolls every write back: the read path, locks, timings and the
	// guard are exercised, and no row changes.
	dryRun bool
}

// NewExecutor returns an executor for spec on pool.
func NewExecutor(pool *pgxpool.Pool, spec *jobspec.Spec) *Executor {
	return &Executor{
		pool:   pool,
		st:     Build(spec),
		lockTO: millis(spec.Timeouts.Lock.D()),
		stmtTO: millis(spec.Timeouts.Statement.D()),
		dryRun: spec.DryRun,
	}
}

// ReadKeys returns up to limit pending keys in [from, hi], ascending. It runs
// under the job's statement timeout so a slow read cannot run for minutes.
func (e *Executor) ReadKeys(ctx context.Context, from, hi int64, limit int) ([]int64, error) {
	var keys []int64
	err := e.inTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, e.st.Read, from, hi, limit)
		if err != nil {
			return err
		}
		keys, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read keys [%d,%d]: %w", from, hi, Classify(ctx, err))
	}
	return keys, nil
}

// Write runs the write statement for keys [lo, hi] in one transaction and
// commits it, returning the rows it changed. If ctx is done before COMMIT the
// transaction rolls back: a worker whose lease expired must not commit into a
// range another worker may now own.
func (e *Executor) Write(ctx context.Context, lo, hi int64) (int64, error) {
	var n int64
	err := e.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, e.st.Write, lo, hi)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("write batch [%d,%d]: %w", lo, hi, Classify(ctx, err))
	}
	return n, nil
}

func (e *Executor) inTx(ctx context.Context, opts pgx.TxOptions, fn func(pgx.Tx) error) error {
	tx, err := e.pool.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	// Rollback after a successful Commit is a no-op; on every other path it
	// ends the transaction so no lock outlives this call. It runs detached
	// from ctx because a cancelled ctx must still release the locks.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)", e.lockTO, e.stmtTO); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if e.dryRun {
		return tx.Rollback(ctx)
	}
	return tx.Commit(ctx)
}

func millis(d time.Duration) string {
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}
