package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/redis/go-redis/v9"
)

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

// TestCleanupRedisRemovesOnlyThisRun: the demo's cleanup removes its job's
// ledger keys and its queue's asynq keys, and nothing of another job or
// queue.
func TestCleanupRedisRemovesOnlyThisRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := ebbtest.Redis(t)
	rdb := env.Client
	led := ledger.New(rdb, env.Prefix)
	queue, otherQueue := env.Queue, env.Queue+"-other"
	for _, job := range []string{"mine", "other"} {
		_, err := led.SaveJob(ctx, job, []byte(`{}`), ledger.Meta{Queue: queue, From: 1, To: 10, Span: 10, Ranges: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := led.Commit(ctx, job, 0, 5, 5, time.Millisecond, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	asynqMine := []string{"asynq:{" + queue + "}:pending", "asynq:{" + queue + "}:t:abc"}
	asynqOther := "asynq:{" + otherQueue + "}:pending"
	t.Cleanup(func() {
		rdb.Del(context.Background(), asynqOther)
		rdb.SRem(context.Background(), asynqQueuesKey, otherQueue)
	})
	for _, k := range append(asynqMine, asynqOther) {
		if err := rdb.Set(ctx, k, "1", time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.SAdd(ctx, asynqQueuesKey, queue, otherQueue).Err(); err != nil {
		t.Fatal(err)
	}

	if _, err := cleanupRedis(ctx, rdb, env.Prefix, "mine", queue); err != nil {
		t.Fatal(err)
	}
	if _, err := led.Meta(ctx, "mine"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("job mine still has a ledger: %v", err)
	}
	if _, err := led.Snapshot(ctx, "other"); err != nil {
		t.Fatalf("job other lost its ledger: %v", err)
	}
	if left, _ := rdb.Exists(ctx, asynqMine...).Result(); left != 0 {
		t.Fatalf("%d of this run's asynq keys survived", left)
	}
	if kept, _ := rdb.Exists(ctx, asynqOther).Result(); kept != 1 {
		t.Fatal("the other queue's key was deleted")
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
