package main

import (
	"fmt"
	"net"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
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
