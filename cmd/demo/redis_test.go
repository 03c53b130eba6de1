package main

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/ebbhq/ebb/internal/ebbtest"
)

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

// TestDeleteQueue: the demo removes its queue only once enqueuer cleanup has
// emptied it, and a queue asynq never saw (a run that failed before start)
// is no error.
func TestDeleteQueue(t *testing.T) {
	t.Parallel()
	env := ebbtest.Redis(t)
	url := ebbtest.RedisURL()
	if err := deleteQueue(url, env.Queue); err != nil {
		t.Fatalf("deleteQueue of an unknown queue: %v", err)
	}
	opt, err := asynq.ParseRedisURI(url)
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClient(opt)
	t.Cleanup(func() { client.Close() })
	in := asynq.NewInspector(opt)
	t.Cleanup(func() { in.Close() })
	info, err := client.Enqueue(asynq.NewTask("demo:test", nil), asynq.Queue(env.Queue))
	if err != nil {
		t.Fatal(err)
	}
	if err := deleteQueue(url, env.Queue); !errors.Is(err, asynq.ErrQueueNotEmpty) {
		t.Fatalf("deleteQueue with a task left = %v, want ErrQueueNotEmpty", err)
	}
	if err := in.DeleteTask(env.Queue, info.ID); err != nil {
		t.Fatal(err)
	}
	if err := deleteQueue(url, env.Queue); err != nil {
		t.Fatalf("deleteQueue of the emptied queue: %v", err)
	}
	queues, err := in.Queues()
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(queues, env.Queue) {
		t.Fatalf("queue %s still listed: %v", env.Queue, queues)
	}
}
