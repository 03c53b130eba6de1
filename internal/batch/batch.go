// Package batch runs one step of a backfill against PostgreSQL: a narrow,
// key-ordered read of pending keys, and one short write transaction with
// SET LOCAL lock_timeout, statement_timeout and enable_seqscan = off that
// commits or rolls back as a whole. It also classifies database errors as transient or permanent, in one
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
	"github.com/ebbhq/ebb/internal/keyspace"
)

// Statements are the SQL a job runs, its key bounds written by the job's
// key Space (placeholders per key column; for one column $1 and $2).
// ReadFrom takes (lower key, upper key, limit) and includes the lower key:
// a range's first read. ReadAfter takes (cursor, upper key, limit) and
// reads strictly after the cursor, the last committed key. Write takes the
// inclusive bounds of one batch (lower key, upper key).
type Statements struct {
	ReadFrom  string
	ReadAfter string
	Write     string
}

// Build turns a spec into its statements. Identifiers are quoted; the set and
// pending expressions are the operator's SQL and go in as written, which is
// why the job spec never comes from anyone without write access to the job.
func Build(spec *jobspec.Spec, space keyspace.Space) Statements {
	table, cols, w := spec.QuotedTable(), space.Columns(), space.Width()
	read := func(bound string) string {
		return fmt.Sprintf("SELECT %s FROM %s WHERE %s AND (%s) ORDER BY %s LIMIT $%d",
			space.Select(), table, bound, spec.Pending, cols, 2*w+1)
	}
	st := Statements{ReadFrom: read(space.From(1)), ReadAfter: read(space.After(1))}
	switch {
	case spec.RawSQL():
		st.Write = spec.SQL
	case spec.Delete:
		st.Write = fmt.Sprintf("DELETE FROM %s WHERE %s AND (%s)", table, space.InRange(1), spec.Pending)
	case spec.Copy.Across():
		st.Write = copySource(spec, space)
	case spec.Copy != nil:
		st.Write = copyStatement(spec, space)
	default:
		st.Write = fmt.Sprintf("UPDATE %s SET %s WHERE %s AND (%s)", table, spec.Set, space.InRange(1), spec.Pending)
	}
	return st
}

// Executor runs a job's reads and writes on a pool the caller owns.
type Executor struct {
	pool   *pgxpool.Pool
	space  keyspace.Space
	st     Statements
	lockTO string
	stmtTO string
	// dryRun rolls every write back: the read path, locks, timings and the
	// guard are exercised, and no row changes.
	dryRun bool
	// across is set for a copy into another database (CopyAcross).
	across *acrossCopy
	// fence is this run's claim on its range (Claim), checked by every
	// write in fenceTable; nil writes unfenced.
	fence      *Fence
	fenceTable string
}

// NewExecutor returns an executor for spec, whose key is space, on pool.
func NewExecutor(pool *pgxpool.Pool, spec *jobspec.Spec, space keyspace.Space) *Executor {
	return &Executor{
		pool:   pool,
		space:  space,
		st:     Build(spec, space),
		lockTO: millis(spec.Timeouts.Lock.D()),
		stmtTO: millis(spec.Timeouts.Statement.D()),
		dryRun: spec.DryRun,
	}
}

// ReadFrom returns up to limit pending keys in [lo, hi], ascending: a
// range's first read. It runs under the job's statement timeout so a slow
// read cannot run for minutes.
func (e *Executor) ReadFrom(ctx context.Context, lo, hi keyspace.Key, limit int) ([]keyspace.Key, error) {
	keys, err := e.read(ctx, e.st.ReadFrom, lo, hi, limit)
	if err != nil {
		return nil, fmt.Errorf("read keys [%s,%s]: %w", lo, hi, err)
	}
	return keys, nil
}

// ReadAfter returns up to limit pending keys in (cursor, hi], ascending:
// every read after a committed batch, strictly past its last key.
func (e *Executor) ReadAfter(ctx context.Context, cursor, hi keyspace.Key, limit int) ([]keyspace.Key, error) {
	keys, err := e.read(ctx, e.st.ReadAfter, cursor, hi, limit)
	if err != nil {
		return nil, fmt.Errorf("read keys (%s,%s]: %w", cursor, hi, err)
	}
	return keys, nil
}

// Write runs the write statement for keys [lo, hi] in one transaction and
// commits it, returning the rows it changed. If ctx is done before COMMIT the
// transaction rolls back: a worker whose lease expired must not commit into a
// range another worker may now own.
func (e *Executor) Write(ctx context.Context, lo, hi keyspace.Key) (int64, error) {
	args, err := e.space.Args(lo, hi)
	if err != nil {
		return 0, fmt.Errorf("write batch [%s,%s]: %w", lo, hi, err)
	}
	if e.across != nil {
		n, err := e.writeAcross(ctx, args)
		if err != nil {
			return 0, fmt.Errorf("copy batch [%s,%s] into %s: %w", lo, hi, e.across.name, Classify(ctx, err))
		}
		return n, nil
	}
	var n int64
	var check string
	if e.fence != nil && !e.dryRun {
		check = fenceSQL(e.fenceTable, e.fence, hi.Encode())
	}
	err = e.inTxOn(ctx, e.pool, pgx.TxOptions{}, check, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, e.st.Write, args...)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("write batch [%s,%s]: %w", lo, hi, Classify(ctx, err))
	}
	return n, nil
}

// Split halves what is left of a range, [lo, hi], for a range that keeps
// timing out at lo (keyspace.Space.Split): a key without arithmetic asks
// the index for its middle row, and that probe runs like a read, in a
// short read-only transaction under the job's statement timeout with
// sequential scans priced out.
func (e *Executor) Split(ctx context.Context, table string, lo, hi keyspace.Key) (first, second keyspace.Range, ok bool, err error) {
	err = e.inTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		first, second, ok, err = e.space.Split(ctx, tx, table, lo, hi)
		return err
	})
	if err != nil {
		return keyspace.Range{}, keyspace.Range{}, false, fmt.Errorf("split [%s,%s]: %w", lo, hi, Classify(ctx, err))
	}
	return first, second, ok, nil
}

// read runs one of the read statements with a lower bound, hi and limit in
// a short read-only transaction.
func (e *Executor) read(ctx context.Context, sql string, lower, hi keyspace.Key, limit int) ([]keyspace.Key, error) {
	args, err := e.space.Args(lower, hi)
	if err != nil {
		return nil, err
	}
	var keys []keyspace.Key
	err = e.inTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sql, append(args, limit)...)
		if err != nil {
			return err
		}
		keys, err = e.space.CollectKeys(rows)
		return err
	})
	if err != nil {
		return nil, Classify(ctx, err)
	}
	return keys, nil
}

func (e *Executor) inTx(ctx context.Context, opts pgx.TxOptions, fn func(pgx.Tx) error) error {
	return e.inTxOn(ctx, e.pool, opts, "", fn)
}

// inTxOn is inTx on pool: the job's database, or a copy's target. A
// non-empty check (fenceSQL) runs right after the settings, in the same
// round trip.
func (e *Executor) inTxOn(ctx context.Context, pool *pgxpool.Pool, opts pgx.TxOptions, check string, fn func(pgx.Tx) error) error {
	// BEGIN and the batch settings go in one round trip (beginQuery), and
	// before the batch's statement is even parsed: a Parse takes the
	// table's lock, and must already wait under lock_timeout.
	opts.BeginQuery = beginQuery(opts, e.lockTO, e.stmtTO)
	if check != "" {
		opts.BeginQuery += "; " + check
	}
	tx, err := pool.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	// Rollback after a successful Commit is a no-op; on every other path it
	// ends the transaction so no lock outlives this call. It runs detached
	// from ctx because a cancelled ctx must still release the locks.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
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

// beginQuery is the statement that begins a batch's transaction with opts
// and gives it the batch settings, for this transaction only: the lock and
// statement timeouts, and enable_seqscan off. pgx sends a BeginQuery
// without arguments as one simple-protocol message, so this is one round
// trip where BEGIN and a set_config statement were two, on every batch
// and every read. The timeouts are millis' digits and "ms", safe inline.
//
// enable_seqscan off: every statement of a batch is meant to be an index
// range scan, and the planner can be talked out of one. It estimates a row
// value (a, b) >= (42, 1001) from its first column alone, so a batch
// inside a tenant holding 90 % of the rows looked like 90 % of the table
// and the write scanned it all. The setting only prices a sequential scan
// out; a table with no usable index (a lookup in the job's own SQL) is
// still scanned.
func beginQuery(opts pgx.TxOptions, lockTO, stmtTO string) string {
	q := "BEGIN"
	if opts.IsoLevel != "" {
		q += " ISOLATION LEVEL " + string(opts.IsoLevel)
	}
	if opts.AccessMode != "" {
		q += " " + string(opts.AccessMode)
	}
	if opts.DeferrableMode != "" {
		q += " " + string(opts.DeferrableMode)
	}
	return q + "; " + settingsSQL(lockTO, stmtTO)
}

// SetLocal gives tx a job's batch settings, for this transaction only
// (see beginQuery for what and why). A batch gets them as it begins; a
// verify chunk and an estimate's sample batch, which begin their own
// transactions, get them from this.
func SetLocal(ctx context.Context, tx pgx.Tx, spec *jobspec.Spec) error {
	_, err := tx.Exec(ctx, settingsSQL(millis(spec.Timeouts.Lock.D()), millis(spec.Timeouts.Statement.D())))
	return err
}

// IdleInTransaction ends a batch's transaction (and its session) when the
// worker stops talking in the middle of it: a worker frozen by a GC pause,
// SIGSTOP or a suspended VM would otherwise hold its rows' locks until it
// woke, and the worker that took its range over (after asynq's 30 s lease)
// would time out on them over and over. It is well below the lease, and
// far above the milliseconds a live batch is ever idle between its
// statements.
const IdleInTransaction = 10 * time.Second

// settingsSQL sets the batch settings for the transaction it runs in.
func settingsSQL(lockTO, stmtTO string) string {
	return "SELECT set_config('lock_timeout', '" + lockTO + "', true), set_config('statement_timeout', '" + stmtTO +
		"', true), set_config('enable_seqscan', 'off', true), set_config('idle_in_transaction_session_timeout', '" +
		millis(IdleInTransaction) + "', true)"
}

func millis(d time.Duration) string {
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}
