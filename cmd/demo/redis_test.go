package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func testRedis(t *testing.T) *redis.Client {
	t.Helper()
	url := os.Getenv("EBB_TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("EBB_TEST_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("test redis (EBB_TEST_REDIS_URL): %v", err)
	}
	return rdb
}

func randomSuffix(t *testing.T) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

func TestGlobEscape(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"demo-orders-abc": "demo-orders-abc",
		"a*b?c[d]e\\f":    `a\*b\?c\[d\]e\\f`,
		"{x}":             "{x}",
	} {
		if got := globEscape(in); got != want {
			t.Errorf("globEscape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCleanupRedisRemovesOnlyThisRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := testRedis(t)
	sfx := randomSuffix(t)
	job, queue := "demo-test-job-"+sfx, "demo-test-q-"+sfx
	otherJob, otherQueue := "demo-test-other-"+sfx, "demo-test-otherq-"+sfx

	// A non-default key prefix (EBB_PREFIX): the cleanup finds a job's keys
	// by their {job} hash tag, whatever comes in front of it.
	const prefix = "demotest:"
	mine := []string{
		prefix + "{" + job + "}:spec",
		prefix + "{" + job + "}:range:1",
		"rate:" + prefix + "{" + job + "}:rows", // redis_rate's own prefix in front of ebb's
		"asynq:{" + queue + "}:pending",
		"asynq:{" + queue + "}:t:abc",
	}
	others := []string{
		prefix + "{" + otherJob + "}:spec",
		prefix + "{" + job + "x}:spec", // a job whose name merely starts with ours
		"asynq:{" + otherQueue + "}:pending",
	}
	all := append(append([]string{}, mine...), others...)
	t.Cleanup(func() {
		rdb.Del(context.Background(), all...)
		rdb.SRem(context.Background(), asynqQueuesKey, queue, otherQueue)
	})
	for _, k := range all {
		if err := rdb.Set(ctx, k, "1", time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.SAdd(ctx, asynqQueuesKey, queue, otherQueue).Err(); err != nil {
		t.Fatal(err)
	}

	n, err := cleanupRedis(ctx, rdb, job, queue)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(mine) {
		t.Fatalf("deleted %d keys, want %d", n, len(mine))
	}
	if left, _ := rdb.Exists(ctx, mine...).Result(); left != 0 {
		t.Fatalf("%d of this run's keys survived", left)
	}
	if kept, _ := rdb.Exists(ctx, others...).Result(); kept != int64(len(others)) {
		t.Fatalf("only %d of %d other keys survived", kept, len(others))
	}
	if isMember, _ := rdb.SIsMember(ctx, asynqQueuesKey, queue).Result(); isMember {
		t.Fatalf("queue %s still listed in %s", queue, asynqQueuesKey)
	}
	if isMember, _ := rdb.SIsMember(ctx, asynqQueuesKey, otherQueue).Result(); !isMember {
		t.Fatalf("other queue %s was removed from %s", otherQueue, asynqQueuesKey)
	}
}

func TestEmbeddedRedisServesAndExpires(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addr, err := freeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	m, err := startEmbeddedRedis("redis://" + addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })

	if err := rdb.Set(ctx, "k", "v", 20*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	// With ClockTTL the key must expire on the wall clock, with no
	// FastForward: asynq's heartbeats and leases depend on it.
	deadline := time.Now().Add(waitTimeout)
	for {
		n, err := rdb.Exists(ctx, "k").Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("key with a 20ms TTL still exists after %s", waitTimeout)
		}
		if err := waitFor(ctx, 5*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
}

func TestEmbeddedRedisRefusesNonLoopback(t *testing.T) {
	t.Parallel()
	_, err := startEmbeddedRedis("redis://192.0.2.1:6379/0")
	if err == nil || !strings.Contains(err.Error(), "not a loopback") {
		t.Fatalf("err = %v, want a loopback error", err)
	}
}
