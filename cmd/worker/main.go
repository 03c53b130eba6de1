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
	"github.com/redis/go-redis/v9"

	"github.com/ebbhq/ebb/internal/dial"
	"github.com/ebbhq/ebb/internal/leader"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/logger"
	"github.com/ebbhq/ebb/internal/metrics"
	"github.com/ebbhq/ebb/internal/rangetask"
	"github.com/ebbhq/ebb/internal/runner"
	"github.com/ebbhq/ebb/internal/signing"

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
	metricsAddr := fs.String("metrics-addr", defaultMetricsAddr, "address for /metrics, /healthz and /readyz (empty to disable); :9090 for every interface, as the container manifests set it for Prometheus and the probes")
	shutdownTimeout := fs.Duration("shutdown-timeout", 30*time.Second, "how long a stop waits for batches in flight; keep it above the jobs' timeouts.statement plus margin")
	requireSigning := fs.Bool("require-signing", false, "refuse to start without EBB_SIGNING_KEY: every job spec and range task must then be signed by an enqueuer with the same key")
	logFormat := logger.Text
	fs.Var(&logFormat, "log-format", logger.Usage)
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	log := logger.New(os.Stderr, logFormat, slog.LevelInfo)
	if err := rangetask.ValidQueue(*queue); err != nil {
		log.Error("bad flag", slog.Any("err", err))
		return 2
	}
	key, err := signingKey(*requireSigning, log)
	if err != nil {
		log.Error("bad signing key", slog.Any("err", err))
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, log, options{queue: *queue, concurrency: *concurrency, metricsAddr: *metricsAddr, shutdownTimeout: *shutdownTimeout, signing: key}); err != nil {
		log.Error("worker stopped", slog.Any("err", err))
		return 1
	}
	return 0
}

// signingKey reads EBB_SIGNING_KEY. Without it the worker runs any spec
// and task it finds in Redis, and says so once; -require-signing makes a
// missing key an error instead.
func signingKey(required bool, log *slog.Logger) (signing.Key, error) {
	key, err := signing.Parse(os.Getenv(signing.EnvVar))
	switch {
	case err != nil:
		return nil, err
	case !key.Enabled() && required:
		return nil, fmt.Errorf("-require-signing is set but %s is empty; set it to the key the enqueuer signs with", signing.EnvVar)
	case !key.Enabled():
		log.Warn("job specs and range tasks are not signed: anyone who can write to Redis can make this worker run any SQL on the job's database; set " + signing.EnvVar + " on the enqueuer and every worker (and -require-signing)")
	}
	return key, nil
}

// defaultMetricsAddr is loopback: /metrics, /healthz and /readyz say what
// the fleet is doing and must not be open to the network unless asked
// for (deploy/ asks for :9090, where Prometheus and the probes reach it).
const defaultMetricsAddr = "127.0.0.1:9090"

// options are the worker's flags.
type options struct {
	queue           string
	concurrency     int
	metricsAddr     string
	shutdownTimeout time.Duration
	// signing verifies specs and tasks; nil runs unsigned ones.
	signing signing.Key
}

// serve runs the worker until ctx ends, then drains it. It reads as the list
// of steps a worker takes; each step's function says why it is there.
func serve(ctx context.Context, log *slog.Logger, opt options) error {
	rdb, err := dial.Redis(ctx, os.Getenv("REDIS_URL"), os.Getenv(dial.RedisCAEnv))
	if err != nil {
		return err
	}
	defer rdb.Close()
	pools := &dial.Pools{}
	defer pools.Close()
	if err := checkDefaultDSN(ctx, pools); err != nil {
		return err
	}
	led := ledger.New(rdb, os.Getenv("EBB_PREFIX"))
	reg, m, closeMetrics, err := newMetrics(rdb, led, log)
	if err != nil {
		return err
	}
	defer closeMetrics()

	var draining atomic.Bool
	id := runner.WorkerID()
	getPool := func(ctx context.Context, env string) (*pgxpool.Pool, error) { return pools.Get(ctx, env) }
	r, err := newRunner(rdb, led, id, getPool, log, m, draining.Load, opt.shutdownTimeout, opt.signing)
	if err != nil {
		return err
	}
	srv := asynq.NewServerFromRedisClient(rdb, runner.ServerConfig(runner.ServerOptions{
		Queue: opt.queue, Concurrency: opt.concurrency, ShutdownTimeout: opt.shutdownTimeout, Logger: log,
	}))
	stopHTTP, err := serveHTTP(opt.metricsAddr, reg, newReadiness(rdb, pools), log)
	if err != nil {
		return err
	}
	stopGuard, err := runGuard(ctx, led, id, getPool, log, m)
	if err != nil {
		stopHTTP()
		return err
	}
	// Last: the guard keeps deciding while batches drain, then hands its
	// lease over at once.
	defer stopGuard()

	if err := srv.Start(r); err != nil {
		stopHTTP()
		return fmt.Errorf("start asynq server on queue %s: %w", opt.queue, err)
	}
	log.Info("worker started", slog.String("queue", opt.queue), slog.Int("concurrency", opt.concurrency))
	<-ctx.Done()
	// Handlers learn of the stop between batches through draining; asynq's
	// Shutdown then waits for them (up to ShutdownTimeout) and re-queues
	// anything still running after that.
	log.Info("worker draining", slog.Duration("shutdown_timeout", opt.shutdownTimeout))
	draining.Store(true)
	srv.Shutdown()
	stopHTTP()
	log.Info("worker stopped cleanly")
	return nil
}

// checkDefaultDSN fails at start, not at the first task, when the default
// DSN is set but wrong.
func checkDefaultDSN(ctx context.Context, pools *dial.Pools) error {
	if os.Getenv("DATABASE_URL") == "" {
		return nil
	}
	_, err := pools.Get(ctx, "DATABASE_URL")
	return err
}

// newMetrics registers the worker's own collectors (ebb_* counters, Go and
// process) and the fleet-wide ones read from Redis at scrape time: every
// worker exports the same ranges, progress, ETA and queue sizes (dashboards
// take max, not sum), so they are there whichever workers are up. The
// returned func closes the asynq inspector the queue collector reads with.
func newMetrics(rdb redis.UniversalClient, led *ledger.Ledger, log *slog.Logger) (*prometheus.Registry, *metrics.Metrics, func(), error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := metrics.New(reg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("register metrics: %w", err)
	}
	jobs, err := metrics.NewProgressCollector(metrics.ProgressConfig{
		JobsFunc: led.Jobs, ProgressFunc: jobProgress(led, time.Now), Logger: log,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	inspector := asynq.NewInspectorFromRedisClient(rdb)
	closeInspector := func() { _ = inspector.Close() }
	queues, err := metrics.NewQueueCollector(inspector, metrics.QueueConfig{
		PingFunc: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }, Logger: log,
	})
	if err == nil {
		err = errors.Join(reg.Register(jobs), reg.Register(queues))
	}
	if err != nil {
		closeInspector()
		return nil, nil, nil, fmt.Errorf("register metrics: %w", err)
	}
	return reg, m, closeInspector, nil
}

// newRunner builds the range handler. A stop must never cut a batch, so it
// is told the shutdown window and warns about jobs whose batches can
// outlast it.
func newRunner(rdb redis.UniversalClient, led *ledger.Ledger, id string, pools runner.PoolFunc, log *slog.Logger,
	m *metrics.Metrics, draining func() bool, shutdownTimeout time.Duration, key signing.Key) (*runner.Runner, error) {
	return runner.New(runner.Config{
		Ledger:   led,
		ID:       id,
		Signing:  key,
		Enqueue:  rangetask.Enqueuer(asynq.NewClientFromRedisClient(rdb), key),
		Pools:    pools,
		Logger:   log,
		Metrics:  m,
		Draining: draining,
		// A stop must never cut a batch: warn about jobs whose batches can
		// outlast the shutdown window.
		ShutdownTimeout: shutdownTimeout,
	})
}

// newReadiness checks Redis, every pool a task opened, and the default DSN
// even before any task opened it.
func newReadiness(rdb redis.UniversalClient, pools *dial.Pools) readiness {
	ready := readiness{ping: rdb.Ping, pools: pools}
	if os.Getenv("DATABASE_URL") != "" {
		ready.envs = []string{"DATABASE_URL"}
	}
	return ready
}

// serveHTTP serves /metrics, /healthz and /readyz on addr until the
// returned stop is called; an empty addr serves nothing.
func serveHTTP(addr string, reg *prometheus.Registry, ready readiness, log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on -metrics-addr %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux(reg, ready), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", slog.Any("err", err))
		}
	}()
	log.Info("metrics listening", slog.String("addr", ln.Addr().String()))
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}

// runGuard makes this worker stand by for the guard lease: one worker per
// job samples the signals and publishes the decision the whole fleet
// follows. The guard outlives ctx (it keeps deciding while batches drain)
// until the returned stop, which waits for it to hand its lease over.
func runGuard(ctx context.Context, led *ledger.Ledger, id string, pools runner.PoolFunc, log *slog.Logger, m *metrics.Metrics) (stop func(), err error) {
	lead, err := leader.New(leader.Config{
		Ledger: led, ID: id, Pools: pools, Getenv: os.Getenv, Logger: log, Metrics: m,
	})
	if err != nil {
		return nil, err
	}
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = lead.Run(gctx)
	}()
	return func() {
		cancel()
		<-done
	}, nil
}
