package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The servers a run measures against: a throwaway PostgreSQL cluster with
// a small buffer cache (the table must not fit in memory, as a production
// table of 80 million rows does not), or the database BENCH_DATABASE_URL
// names; and a throwaway redis-server, so INFO commandstats counts the
// fleet's commands and nobody else's.

// benchDatabase creates a database of its own in the server dsn (a
// postgres:// URL) points at and returns its DSN and a function that drops
// it. Errors never echo the DSN: it may hold a password.
func benchDatabase(ctx context.Context, dsn string) (string, func(), error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, errors.New("BENCH_DATABASE_URL must be a postgres:// URL")
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", nil, fmt.Errorf("connect to BENCH_DATABASE_URL's server %s: %w", u.Host, err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("ebb_bench_%d", time.Now().UnixNano()%1_000_000_000)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	drop := func() {
		c, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

// openPool opens a pool of at most n connections on dsn.
func openPool(ctx context.Context, dsn string, n int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse the benchmark's DSN: %w", err)
	}
	cfg.MaxConns = n
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	return pool, nil
}
