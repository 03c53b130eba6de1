package main

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// trafficConfig shapes the live traffic the backfill must not starve.
type trafficConfig struct {
	Table   pgx.Identifier
	Rows    int64         // ids are drawn uniformly from [1, Rows]
	Workers int           // concurrent clients, each one op at a time
	Think   time.Duration // pause after each op; keeps the load light, like a real app between requests
	// UpdateEvery makes every n-th op of a client an UPDATE; the rest are
	// point reads. Zero means 5.
	UpdateEvery int
}

// runTraffic starts cfg.Workers clients that loop until ctx is cancelled,
// each doing a point read or, every UpdateEvery-th op, a one-row UPDATE of
// amount_cents and updated_at. The UPDATE never touches status: the
// backfill's pending predicate and its verification must see only the
// backfill's writes. Each op's latency goes to rec. The returned function
// blocks until every client has returned.
func runTraffic(ctx context.Context, pool *pgxpool.Pool, cfg trafficConfig, rec *recorder, logger *slog.Logger) (wait func()) {
	if cfg.UpdateEvery <= 0 {
		cfg.UpdateEvery = 5
	}
	t := cfg.Table.Sanitize()
	readSQL := "SELECT id, status, amount_cents FROM " + t + " WHERE id = $1"
	updateSQL := "UPDATE " + t + " SET amount_cents = amount_cents + 1, updated_at = now() WHERE id = $1"

	var wg sync.WaitGroup
	for w := range cfg.Workers {
		wg.Go(func() {
			// A private generator per client: no lock shared between clients
			// that would add its own latency to the measurement.
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
			// Since Go 1.23 a stopped timer's channel holds no stale tick, so
			// Reset below needs no drain.
			timer := time.NewTimer(cfg.Think)
			timer.Stop()
			defer timer.Stop()
			for op := 1; ; op++ {
				id := rng.Int64N(cfg.Rows) + 1
				start := time.Now()
				var err error
				if op%cfg.UpdateEvery == 0 {
					_, err = pool.Exec(ctx, updateSQL, id)
				} else {
					var (
						gotID  int64
						status *string
						amount int32
					)
					err = pool.QueryRow(ctx, readSQL, id).Scan(&gotID, &status, &amount)
				}
				elapsed := time.Since(start)
				if ctx.Err() != nil {
					// Stopping the traffic cancels the op in flight; that is
					// shutdown, not a failed request.
					return
				}
				if err != nil && !errors.Is(err, context.Canceled) {
					logger.LogAttrs(ctx, slog.LevelDebug, "traffic op failed", slog.Int64("id", id), slog.Any("err", err))
				}
				rec.record(elapsed, err)

				timer.Reset(cfg.Think)
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
			}
		})
	}
	return wg.Wait
}
