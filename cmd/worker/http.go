package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/ebbhq/ebb/internal/dial"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/metrics"
	"github.com/ebbhq/ebb/internal/progress"
)

// readyTimeout bounds one /readyz check; the k8s probe gives up after 2 s.
const readyTimeout = 2 * time.Second

// readiness decides /readyz: a worker is ready only while it can do its
// work, i.e. Redis and the databases its jobs write to answer.
type readiness struct {
	ping  func(context.Context) *redis.StatusCmd
	pools *dial.Pools
	// envs are DSN variables that must answer even when no task has opened
	// their pool yet (DATABASE_URL when set): a worker whose database is
	// down is not ready, whether or not it has served a task.
	envs []string
}

// check returns why the worker is not ready, or "" when it is.
func (rd readiness) check(ctx context.Context) string {
	if err := rd.ping(ctx).Err(); err != nil {
		return fmt.Sprintf("redis unreachable: %v", err)
	}
	var bad []string
	for _, env := range rd.envs {
		// Get opens the pool on first use (dial pings it, and its errors
		// never show the password) and keeps it for the tasks.
		if _, err := rd.pools.Get(ctx, env); err != nil {
			bad = append(bad, err.Error())
		}
	}
	// Ping outside Each: Each holds the pools' lock, and a slow ping must
	// not stall a task that is opening a pool.
	open := map[string]*pgxpool.Pool{}
	rd.pools.Each(func(env string, p *pgxpool.Pool) { open[env] = p })
	for env, p := range open {
		if err := p.Ping(ctx); err != nil {
			bad = append(bad, fmt.Sprintf("postgres unreachable (%s): %v", env, err))
		}
	}
	return strings.Join(bad, "; ")
}

// mux serves /metrics, /healthz (the process is alive) and /readyz (Redis
// and the databases answer; 503 with the reason when not).
func mux(reg *prometheus.Registry, rd readiness) http.Handler {
	m := http.NewServeMux()
	m.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	m.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	m.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if reason := rd.check(ctx); reason != "" {
			http.Error(w, "not ready: "+reason, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return m
}

// jobProgress feeds the ebb_ranges, ebb_progress_ratio and ebb_eta_seconds
// collector from one cheap read per job, the ledger snapshot, through the
// same progress.Of that `enqueuer status` uses, so the dashboard and the CLI
// never disagree. A scrape never runs a full status (overrides, guard
// decision, baseline): the gauges need none of it.
func jobProgress(led *ledger.Ledger, now func() time.Time) func(context.Context, string) (metrics.JobProgress, error) {
	return func(ctx context.Context, job string) (metrics.JobProgress, error) {
		snap, err := led.Snapshot(ctx, job)
		if err != nil {
			return metrics.JobProgress{}, err
		}
		f := progress.Of(snap, now())
		return metrics.JobProgress{
			RangesTotal: f.RangesTotal, RangesDone: f.RangesDone, RangesFailed: f.RangesFailed,
			Progress: f.Progress, ETASeconds: f.ETASeconds,
		}, nil
	}
}
