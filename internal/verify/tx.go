package verify

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/batch"
	"github.com/ebbhq/ebb/internal/jobspec"
)

// readTries is how often one read is tried when it fails transiently: a
// chunk that met a statement timeout or a lost connection (a failover)
// is read again rather than ending a walk that may have run for an hour.
const readTries = 5

// ReadOnly runs fn in a short REPEATABLE READ, READ ONLY transaction with
// the job's batch settings (batch.SetLocal: its lock and statement
// timeouts, sequential scans priced out), so verify can never write nor
// hold a long snapshot, and its statements agree with each other. A transient failure (batch.Classify)
// runs fn again in a new transaction, up to readTries times; fn must
// therefore start from scratch each time it is called.
func ReadOnly(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, fn func(pgx.Tx) error) error {
	b := &backoff.ExponentialBackOff{InitialInterval: 200 * time.Millisecond, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: 5 * time.Second}
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := batch.Classify(ctx, readOnce(ctx, pool, spec, fn))
		if err != nil && !batch.IsTransient(err) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(b), backoff.WithMaxTries(readTries))
	return err
}

func readOnce(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, fn func(pgx.Tx) error) error {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// As in a batch: a lock held by DDL must not hold a chunk for long,
	// and a misestimated row value must not turn a chunk's count into a
	// scan of the whole table.
	if err := batch.SetLocal(ctx, tx, spec); err != nil {
		return err
	}
	return fn(tx)
}
