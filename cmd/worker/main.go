// Command worker is ebb's fleet binary: it serves range tasks from one asynq
// queue, walking each range in short committed batches, and exposes
// /metrics, /healthz and /readyz. Run any number of them against one Redis.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/dial"
	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/logger"
	"github.com/ebbhq/ebb/internal/metrics"
	"github.com/ebbhq/ebb/internal/runner"

	// Schedules name IANA time zones; a slim image may have no zoneinfo.
	_ "time/tzdata"
)

const usage = `worker serves ebb range tasks from Redis.

Usage:
  worker [flags]

Environment:
  REDIS_URL      Redis to serve from (default redis://127.0.0.1:6379/0)
  DATABASE_URL   DSN of the database, or whichever variable a job's
                 database_env names; checked at start when set
  EBB_PREFIX     key prefix of ebb's Redis keys (default "ebb:")

Stop it with SIGTERM or Ctrl-C: it finishes the batch in flight, commits,
checkpoints, hands its ranges back to the queue and exits 0.

Flags:
`

func main() {
	dial.QuietRedisLogs()
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	queue := fs.String("queue", "ebb", "asynq queue to serve (no { or } in the name)")
	concurrency := fs.Int("concurrency", 1, "ranges this process works on at once")
	metricsAddr := fs.String("metrics-addr", ":9090", "address for /metrics, /healthz and /readyz (empty to disable)")
	shutdownTimeout := fs.Duration("shutdown-timeout", 30*time.Second, "how long a stop waits for batches in flight; keep it above the jobs' timeouts.statement plus margin")
	logFormat := logger.Text
	fs.Var(&logFormat, "log-format", logger.Usage)
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	log := logger.New(os.Stderr, logFormat, slog.LevelInfo)
	if err := control.ValidQueue(*queue); err != nil {
		log.Error("bad flag", slog.Any("err", err))
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, log, *queue, *concurrency, *metricsAddr, *shutdownTimeout); err != nil {
		log.Error("worker stopped", slog.Any("err", err))
		return 1
	}
	return 0
}

func serve(ctx context.Context, log *slog.Logger, queue string, concurrency int, metricsAddr string, shutdownTimeout time.Duration) error {
	rdb, err := dial.Redis(ctx, os.Getenv("REDIS_URL"))
	if err != nil {
		return err
	}
	defer rdb.Close()
	pools := &dial.Pools{}
	defer pools.Close()
	// Fail at start, not at the first task, when the default DSN is wrong.
	if os.Getenv("DATABASE_URL") != "" {
		if _, err := pools.Get(ctx, "DATABASE_URL"); err != nil {
			return err
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := metrics.New(reg)
	if err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	// Fleet-wide state read from Redis at scrape time: every worker exports
	// the same ranges, progress, ETA and queue sizes (dashboards take max,
	// not sum), so they are there whichever workers are up.
	ctl := control.New(rdb, os.Getenv("EBB_PREFIX"), log)
	defer ctl.Close()
	progress, err := metrics.NewProgressCollector(metrics.ProgressConfig{
		JobsFunc: ctl.Jobs, ProgressFunc: jobProgress(ctl), Logger: log,
	})
	if err != nil {
		return err
	}
	inspector := asynq.NewInspectorFromRedisClient(rdb)
	defer inspector.Close()
	queues, err := metrics.NewQueueCollector(inspector, metrics.QueueConfig{
		PingFunc: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }, Logger: log,
	})
	if err != nil {
		return err
	}
	if err := errors.Join(reg.Register(progress), reg.Register(queues)); err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}

	var draining atomic.Bool
	led := ledger.New(rdb, os.Getenv("EBB_PREFIX"))
	getPool := func(ctx context.Context, env string) (*pgxpool.Pool, error) { return pools.Get(ctx, env) }
	id := runner.WorkerID()
	r, err := runner.New(runner.Config{
		Ledger:   led,
		ID:       id,
		Enqueue:  runner.Enqueuer(asynq.NewClientFromRedisClient(rdb)),
		Pools:    getPool,
		Logger:   log,
		Metrics:  m,
		Draining: draining.Load,
		// A stop must never cut a batch: warn about jobs whose batches can
		// outlast the shutdown window.
		ShutdownTimeout: shutdownTimeout,
	})
	if err != nil {
		return err
	}
	srv := asynq.NewServerFromRedisClient(rdb, runner.ServerConfig(runner.ServerOptions{
		Queue: queue, Concurrency: concurrency, ShutdownTimeout: shutdownTimeout, Logger: log,
	}))

	var httpSrv *http.Server
	if metricsAddr != "" {
		ln, err := net.Listen("tcp", metricsAddr)
		if err != nil {
			return fmt.Errorf("listen on -metrics-addr %s: %w", metricsAddr, err)
		}
		ready := readiness{ping: rdb.Ping, pools: pools}
		if os.Getenv("DATABASE_URL") != "" {
			ready.envs = []string{"DATABASE_URL"}
		}
		httpSrv = &http.Server{Handler: mux(reg, ready), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics server stopped", slog.Any("err", err))
			}
		}()
		log.Info("metrics listening", slog.String("addr", ln.Addr().String()))
	}

	// Every worker stands by for the guard lease; one per job samples the
	// signals and publishes the decision the whole fleet follows.
	leader, err := guard.NewLeader(guard.LeaderConfig{
		Ledger: led, ID: id, Pools: getPool, Getenv: os.Getenv, Logger: log, Metrics: m,
	})
	if err != nil {
		return err
	}
	gctx, stopGuard := context.WithCancel(context.WithoutCancel(ctx))
	guardDone := make(chan struct{})
	go func() {
		defer close(guardDone)
		_ = leader.Run(gctx)
	}()
	defer func() {
		// Last: the guard keeps deciding while batches drain, then hands
		// its lease over at once.
		stopGuard()
		<-guardDone
	}()

	if err := srv.Start(r); err != nil {
		return fmt.Errorf("start asynq server on queue %s: %w", queue, err)
	}
	log.Info("worker started", slog.String("queue", queue), slog.Int("concurrency", concurrency))
	<-ctx.Done()
	// Handlers learn of the stop between batches through draining; asynq's
	// Shutdown then waits for them (up to ShutdownTimeout) and re-queues
	// anything still running after that.
	log.Info("worker draining", slog.Duration("shutdown_timeout", shutdownTimeout))
	draining.Store(true)
	srv.Shutdown()
	if httpSrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = httpSrv.Shutdown(sctx)
	}
	log.Info("worker stopped cleanly")
	return nil
}
