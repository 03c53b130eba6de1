package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// withDatabase returns dsn pointing at database name instead of the one it
// names. dsn is a postgres:// URL or a libpq key=value string, the two forms
// DATABASE_URL may take.
func withDatabase(dsn, name string) (string, error) {
	if name == "" {
		return "", errors.New("empty database name")
	}
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			// url.Error repeats the whole URL, password included.
			return "", errors.New("DATABASE_URL is not a valid URL")
		}
		if u.Scheme != "postgres" && u.Scheme != "postgresql" {
			return "", fmt.Errorf("DATABASE_URL scheme %q: want postgres:// or postgresql://", u.Scheme)
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// libpq lets a later keyword win, and so does pgx's parser.
	quoted := "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(name) + "'"
	return strings.TrimSpace(dsn) + " dbname=" + quoted, nil
}

// ensureDatabase creates database name unless it exists, connecting with
// adminDSN. It never drops anything.
func ensureDatabase(ctx context.Context, adminDSN, name string) (created bool, err error) {
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return false, fmt.Errorf("connect to DATABASE_URL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return false, fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return false, nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		// Two demos starting at once: the other one won the race, which is fine.
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P04" {
			return false, nil
		}
		return false, fmt.Errorf("create database %s: %w", name, err)
	}
	return true, nil
}

// seedTable drops and recreates table with rows rows, all still pending
// (status NULL). The primary key is built after the insert, which is several
// times faster than maintaining the index row by row, and VACUUM ANALYZE
// leaves fresh statistics and a visibility map, as a long-lived production
// table would have.
func seedTable(ctx context.Context, pool *pgxpool.Pool, table pgx.Identifier, rows int64) error {
	if rows < 1 {
		return fmt.Errorf("seed %s: rows must be at least 1, got %d", table.Sanitize(), rows)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("seed %s: acquire connection: %w", table.Sanitize(), err)
	}
	// These settings must not leak into traffic that reuses the connection.
	defer conn.Release()
	defer func() {
		if _, resetErr := conn.Exec(context.WithoutCancel(ctx), "RESET ALL"); resetErr != nil {
			conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()

	t := table.Sanitize()
	pk := pgx.Identifier{table[len(table)-1] + "_pkey"}.Sanitize()
	stmts := []struct {
		sql  string
		args []any
	}{
		{sql: "SET synchronous_commit = off"},
		{sql: "SET maintenance_work_mem = '256MB'"},
		{sql: "DROP TABLE IF EXISTS " + t},
		{sql: "CREATE TABLE " + t + ` (
			id bigint NOT NULL,
			legacy_state int NOT NULL,
			status text,
			hits int NOT NULL DEFAULT 0,
			amount_cents int NOT NULL,
			updated_at timestamptz NOT NULL DEFAULT now()
		)`},
		{sql: "INSERT INTO " + t + ` (id, legacy_state, amount_cents)
			SELECT g, g % 7, (random() * 100000)::int FROM generate_series(1::bigint, $1::bigint) AS g`, args: []any{rows}},
		{sql: "ALTER TABLE " + t + " ADD CONSTRAINT " + pk + " PRIMARY KEY (id)"},
		{sql: "VACUUM (ANALYZE) " + t},
	}
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s.sql, s.args...); err != nil {
			return fmt.Errorf("seed %s: %s: %w", t, firstLine(s.sql), err)
		}
	}
	return nil
}

// firstLine returns the first line of s, trimmed: enough of a statement to
// name it in an error.
func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// poolConfig parses dsn for a pool of at most maxConns connections. The
// traffic pool is sized to its workers so a backfill never waits behind the
// demo's own pool.
func poolConfig(dsn string, maxConns int32) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	cfg.MaxConns = maxConns
	cfg.MinConns = min(maxConns, 1)
	cfg.MaxConnIdleTime = 5 * time.Minute
	return cfg, nil
}
