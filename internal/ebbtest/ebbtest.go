// Package ebbtest holds test helpers only: a fresh PostgreSQL schema and a
// Redis key prefix and queue per test, so tests run in parallel against the
// real servers without seeing each other, and waits with deadlines.
package ebbtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	neturl "net/url"

	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// WaitTimeout bounds every wait in tests; CI machines are slower.
var WaitTimeout = func() time.Duration {
	if os.Getenv("CI") != "" {
		return 3 * time.Minute
	}
	return 2 * time.Minute
}()

// DatabaseURL is the server tests use (EBB_TEST_DATABASE_URL, else local).
func DatabaseURL() string {
	if u := os.Getenv("EBB_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// RedisURL is the server tests use (EBB_TEST_REDIS_URL, else local).
func RedisURL() string {
	if u := os.Getenv("EBB_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// Suffix returns a short random hex string.
func Suffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var nonIdent = regexp.MustCompile(`[^a-z0-9_]+`)

// DB is a test's own schema on the shared server.
type DB struct {
	Pool   *pgxpool.Pool
	Schema string
}

// Table qualifies a table name with the test's schema.
func (d *DB) Table(name string) string { return d.Schema + "." + name }

// Schema creates a fresh schema named after the test and drops it (with
// everything in it) when the test ends. A server that does not answer fails
// the test: it is never skipped.
func Schema(t testing.TB) *DB {
	t.Helper()
	return SchemaOn(t, DatabaseURL())
}

// SchemaOn is Schema in the database url names (a throwaway server's).
func SchemaOn(t testing.TB, url string) *DB {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatalf("ebbtest: open %s: %v", url, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		t.Fatalf("ebbtest: PostgreSQL does not answer (run scripts/services.sh or set EBB_TEST_DATABASE_URL): %v", err)
	}
	name := nonIdent.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	schema := "ebbtest_" + name + "_" + Suffix()
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		pool.Close()
		t.Fatalf("ebbtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("ebbtest: drop schema %s: %v", schema, err)
		}
		pool.Close()
	})
	return &DB{Pool: pool, Schema: schema}
}

// Database creates a fresh database on the test server (for what needs a
// second database, such as a copy into another one) and drops it when the
// test ends. It returns the database's pool, with a schema of its own like
// Schema's, and its URL.
func Database(t testing.TB) (db *DB, url string) {
	t.Helper()
	ctx := context.Background()
	admin := Schema(t) // the admin connection, and a server that answers
	name := "ebbtest_db_" + Suffix()
	if _, err := admin.Pool.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("ebbtest: create database: %v", err)
	}
	u, err := neturl.Parse(DatabaseURL())
	if err != nil {
		t.Fatalf("ebbtest: parse %s: %v", DatabaseURL(), err)
	}
	u.Path = "/" + name
	pool, err := pgxpool.New(ctx, u.String())
	if err != nil {
		t.Fatalf("ebbtest: open database %s: %v", name, err)
	}
	// Cleanups run last-in first-out: the pool closes, then the database
	// goes (FORCE ends a worker's connection the test left open), then
	// the admin schema.
	t.Cleanup(func() {
		if _, err := admin.Pool.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("ebbtest: drop database %s: %v", name, err)
		}
	})
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+admin.Schema); err != nil {
		t.Fatalf("ebbtest: create schema in %s: %v", name, err)
	}
	return &DB{Pool: pool, Schema: admin.Schema}, u.String()
}

// Exec runs SQL or fails the test.
func (d *DB) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := d.Pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("exec %q: %v", sql, err)
	}
}

// Count runs a query returning one number.
func (d *DB) Count(t testing.TB, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := d.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("query %q: %v", sql, err)
	}
	return n
}

// RedisEnv is a test's own corner of the shared Redis.
type RedisEnv struct {
	Client *redis.Client
	// Prefix is the ebb key prefix of this test.
	Prefix string
	// Queue is the asynq queue of this test.
	Queue string
}

// Redis returns a client, a unique key prefix and a unique queue. On cleanup
// it deletes the prefix's keys, redis_rate's twin keys and the queue's asynq
// keys: never FLUSHDB, which would hit parallel tests.
func Redis(t testing.TB) *RedisEnv {
	t.Helper()
	return RedisOn(t, RedisURL())
}

// RedisOn is Redis on the server url names (a throwaway one's).
func RedisOn(t testing.TB, url string) *RedisEnv {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("ebbtest: parse EBB_TEST_REDIS_URL: %v", err)
	}
	c := redis.NewClient(opts)
	if err := c.Ping(context.Background()).Err(); err != nil {
		_ = c.Close()
		t.Fatalf("ebbtest: Redis does not answer (run scripts/services.sh or set EBB_TEST_REDIS_URL): %v", err)
	}
	s := Suffix()
	env := &RedisEnv{Client: c, Prefix: "ebbtest-" + s + ":", Queue: "ebbtest-" + s}
	t.Cleanup(func() {
		ctx := context.Background()
		for _, pattern := range []string{env.Prefix + "*", "rate:" + env.Prefix + "*", "asynq:{" + env.Queue + "}:*"} {
			iter := c.Scan(ctx, 0, pattern, 500).Iterator()
			var keys []string
			for iter.Next(ctx) {
				keys = append(keys, iter.Val())
			}
			if len(keys) > 0 {
				c.Del(ctx, keys...)
			}
		}
		c.SRem(ctx, "asynq:queues", env.Queue)
		_ = c.Close()
	})
	return env
}

// Eventually polls cond until it is true or WaitTimeout passes.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", WaitTimeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Never checks that cond stays false for the whole of d, polling.
func Never(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			t.Fatalf("%s happened within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Logger logs through t.Log until the test ends, then discards, so a
// goroutine still draining cannot log into a finished test.
func Logger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// Buffer is a bytes.Buffer that goroutines (a command's output, a
// worker's log) write to while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
