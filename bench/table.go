package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The table every strategy fills: orders, wide (about 400 bytes a row, as
// an order with addresses and notes is) or narrow (three numbers). Each
// strategy gets a fresh copy of a seed table, so none starts on the dead
// tuples or the warmed cache another left behind. The backfill fills
// total_cents from amount_cents; live traffic never touches either.

const (
	seedTable = "orders_seed"
	table     = "orders"
	// fillSet and pendingSQL are the backfill every strategy runs.
	fillSet    = "total_cents = amount_cents * 108 / 100"
	pendingSQL = "total_cents IS NULL"
)

// seed creates the seed table with rows rows.
func seed(ctx context.Context, pool *pgxpool.Pool, rows int64, wide bool) error {
	ddl := `CREATE UNLOGGED TABLE ` + seedTable + ` (
  id bigint NOT NULL, customer_id bigint NOT NULL, created_at timestamptz NOT NULL,
  status text NOT NULL, amount_cents bigint NOT NULL, total_cents bigint,
  currency text NOT NULL, shipping_address text NOT NULL, billing_address text NOT NULL, notes text NOT NULL)`
	fill := `INSERT INTO ` + seedTable + ` SELECT g, (g * 7919) % $2 + 1, now() - make_interval(secs => ($1 - g) * 0.5),
  (ARRAY['new','paid','shipped','delivered'])[1 + g % 4], 100 + (g * 31) % 99900, NULL, 'EUR',
  rpad(g::text || ' Long Street, Apartment ' || (g % 300)::text, 110, ' x'),
  rpad(g::text || ' Billing Avenue, Floor ' || (g % 40)::text, 110, ' y'),
  rpad('gift wrap, leave at the door, order ' || g::text, 90, ' z')
FROM generate_series(1, $1::bigint) g`
	if !wide {
		ddl = `CREATE UNLOGGED TABLE ` + seedTable + ` (id bigint NOT NULL, customer_id bigint NOT NULL, created_at timestamptz NOT NULL,
  status text NOT NULL, amount_cents bigint NOT NULL, total_cents bigint)`
		fill = `INSERT INTO ` + seedTable + ` SELECT g, (g * 7919) % $2 + 1, now() - make_interval(secs => ($1 - g) * 0.5),
  (ARRAY['new','paid','shipped','delivered'])[1 + g % 4], 100 + (g * 31) % 99900, NULL
FROM generate_series(1, $1::bigint) g`
	}
	if _, err := pool.Exec(ctx, "DROP TABLE IF EXISTS "+seedTable); err != nil {
		return fmt.Errorf("drop old seed table: %w", err)
	}
	if _, err := pool.Exec(ctx, ddl); err != nil {
		return fmt.Errorf("create seed table: %w", err)
	}
	if _, err := pool.Exec(ctx, fill, rows, customers(rows)); err != nil {
		return fmt.Errorf("seed %d rows: %w", rows, err)
	}
	return nil
}

// customers is how many customers the rows belong to: about 20 orders each.
func customers(rows int64) int64 { return max(rows/20, 1) }

// reset replaces orders with a fresh, logged, vacuumed and analyzed copy of
// the seed, with its primary key and the index the per-customer list uses,
// and a checkpoint so one strategy's WAL is not flushed on the next's time.
func reset(ctx context.Context, pool *pgxpool.Pool) (time.Duration, error) {
	start := time.Now()
	for _, stmt := range []string{
		"DROP TABLE IF EXISTS " + table,
		"CREATE TABLE " + table + " AS SELECT * FROM " + seedTable,
		"ALTER TABLE " + table + " ADD PRIMARY KEY (id)",
		"CREATE INDEX ON " + table + " (customer_id, created_at)",
		"VACUUM (ANALYZE) " + table,
		"CHECKPOINT",
	} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			return 0, fmt.Errorf("reset the table (%s): %w", stmt, err)
		}
	}
	return time.Since(start), nil
}

// check counts the rows still pending and the rows filled wrong.
func check(ctx context.Context, pool *pgxpool.Pool) (pending, wrong int64, err error) {
	err = pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE total_cents IS NULL),
  count(*) FILTER (WHERE total_cents IS DISTINCT FROM amount_cents * 108 / 100 AND total_cents IS NOT NULL)
FROM `+table).Scan(&pending, &wrong)
	if err != nil {
		return 0, 0, fmt.Errorf("verify the fill: %w", err)
	}
	return pending, wrong, nil
}
