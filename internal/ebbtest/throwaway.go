package ebbtest

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ebbhq/ebb/internal/throwaway"
)

// ThrowawayRedis starts a redis-server of the test's own (see package
// throwaway), stopped and removed when the test ends: for a test that
// must restart Redis, lose its data or count its commands.
func ThrowawayRedis(t testing.TB, o throwaway.RedisOptions) *throwaway.Server {
	t.Helper()
	s, err := throwaway.Redis(context.Background(), t.TempDir(), o)
	if err != nil {
		t.Fatalf("ebbtest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// ThrowawayPostgres starts a PostgreSQL cluster of the test's own, stopped
// and removed when the test ends: for a test that must restart it. Its
// directory is not t.TempDir: as root the cluster runs as postgres, which
// must own it.
func ThrowawayPostgres(t testing.TB, o throwaway.PostgresOptions) *throwaway.Server {
	t.Helper()
	dir, err := os.MkdirTemp("", "ebbtest-pg-")
	if err != nil {
		t.Fatalf("ebbtest: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	s, err := throwaway.Postgres(context.Background(), dir, o)
	if err != nil {
		t.Fatalf("ebbtest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Client opens a client on a throwaway Redis, closed when the test ends.
func Client(t testing.TB, s *throwaway.Server) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(s.URL)
	if err != nil {
		t.Fatalf("ebbtest: %v", err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}
