package main

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ebbhq/ebb/internal/ledger"
)

// startEmbeddedRedis hosts a miniredis on the loopback address of redisURL,
// for machines with no redis-server at all (scripts/services.sh then exports
// EBB_EMBEDDED_REDIS=1). It lives inside the demo process: fine for one
// machine, never for a fleet, and it dies with the demo. The caller closes it.
func startEmbeddedRedis(redisURL string) (*miniredis.Miniredis, error) {
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("embedded redis: parse REDIS_URL: %w", err)
	}
	host, _, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("embedded redis: address %q: %w", opts.Addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("embedded redis: REDIS_URL host %q is not a loopback address; an in-process Redis only serves this machine", host)
	}
	m := miniredis.NewMiniRedis()
	if opts.Password != "" {
		if opts.Username != "" {
			m.RequireUserAuth(opts.Username, opts.Password)
		} else {
			m.RequireAuth(opts.Password)
		}
	}
	if err := m.StartAddr(opts.Addr); err != nil {
		return nil, fmt.Errorf("embedded redis: listen on %s: %w", opts.Addr, err)
	}
	// Without this, TTLs never run down in miniredis: asynq's server
	// heartbeats, unique locks and ebb's leases would never expire.
	m.ClockTTL(true)
	return m, nil
}

// globEscape quotes the Redis MATCH metacharacters in s so that s matches
// only itself.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// queueKeyPattern matches asynq's keys for one queue (asynq base.QueueKeyPrefix).
func queueKeyPattern(queue string) string { return "asynq:{" + globEscape(queue) + "}:*" }

// asynqQueuesKey is the set in which asynq lists every queue it has seen
// (asynq base.AllQueues).
const asynqQueuesKey = "asynq:queues"

// deleteMatching SCANs for pattern and DELs what it finds, in pages, so a
// big keyspace never blocks Redis the way KEYS would. It takes a single-node
// client: on Redis Cluster, SCAN would see one shard only.
func deleteMatching(ctx context.Context, rdb *redis.Client, pattern string) (int, error) {
	deleted := 0
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, pattern, 500).Result()
		if err != nil {
			return deleted, fmt.Errorf("scan %s: %w", pattern, err)
		}
		if len(keys) > 0 {
			n, err := rdb.Del(ctx, keys...).Result()
			if err != nil {
				return deleted, fmt.Errorf("del keys matching %s: %w", pattern, err)
			}
			deleted += int(n)
		}
		if next == 0 {
			return deleted, nil
		}
		cursor = next
	}
}

// cleanupRedis removes what one demo run left in Redis: the job's ebb keys
// (through the ledger, which owns their names, under the same EBB_PREFIX the
// workers use) and the run's asynq queue. The queue name is unique per run,
// so nothing of another job or queue is touched.
func cleanupRedis(ctx context.Context, rdb *redis.Client, prefix, job, queue string) (int, error) {
	n, err := ledger.New(rdb, prefix).DeleteJob(ctx, job)
	total := int(n)
	if err != nil {
		return total, err
	}
	m, err := deleteMatching(ctx, rdb, queueKeyPattern(queue))
	total += m
	if err != nil {
		return total, err
	}
	if err := rdb.SRem(ctx, asynqQueuesKey, queue).Err(); err != nil {
		return total, fmt.Errorf("srem %s %s: %w", asynqQueuesKey, queue, err)
	}
	return total, nil
}
