package main

import (
	"context"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/ebbhq/ebb/internal/dial"
)

// mux serves /metrics, /healthz (the process is alive) and /readyz (Redis
// and every open database pool answer).
func mux(reg *prometheus.Registry, ping func(context.Context) *redis.StatusCmd, pools *dial.Pools) http.Handler {
	m := http.NewServeMux()
	m.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	m.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	m.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ping(ctx).Err(); err != nil {
			http.Error(w, "redis unreachable", http.StatusServiceUnavailable)
			return
		}
		bad := ""
		pools.Each(func(env string, p *pgxpool.Pool) {
			if err := p.Ping(ctx); err != nil {
				bad = env
			}
		})
		if bad != "" {
			http.Error(w, "postgres unreachable ("+bad+")", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return m
}
