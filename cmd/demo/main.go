// Command demo runs a real ebb backfill end to end under live traffic, by
// driving the same commands an operator runs.
//
// It creates database ebb_demo if missing and seeds public.demo_orders with
// pending rows, writes a job file, starts a small fleet of bin/worker
// processes and a light point-read/point-update load, then runs bin/enqueuer
// the way an operator would: plan, start, status --json every second for the
// progress line, pause and resume once midway, verify (its exit code decides
// success) and cleanup. It reports the live traffic's p95 latency before and
// during the backfill, which is the number ebb exists to protect.
//
// What the demo owns is what no ebb command does: the database and its seed,
// the live traffic and its latency, and supervising the worker processes.
// Everything about the job (its progress, its verification, its Redis keys)
// it learns and changes only through the enqueuer's command-line contract, so
// it imports none of ebb's logic (only internal/clock's sleep). It needs DATABASE_URL and REDIS_URL, which
// scripts/services.sh provides:
//
//	go build -o bin/ ./cmd/... && eval "$(scripts/services.sh)" && bin/demo -bin bin
//
// Each run uses a fresh job name and queue, so it never sees an earlier run's
// ledger. The demo_orders table is kept afterwards for inspection; the job's
// Redis keys and tasks are removed by enqueuer cleanup, and its now empty
// queue through asynq's Inspector.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// config holds the demo's flags.
type config struct {
	binDir         string
	rows           int64
	dbName         string
	workers        int
	concurrency    int
	trafficWorkers int
	think          time.Duration
	baseline       time.Duration
	timeout        time.Duration
	readyTimeout   time.Duration
	stopGrace      time.Duration
	pauseAt        float64
	pauseFor       time.Duration
	seedOnly       bool
	verbose        bool
}

// parseFlags reads the demo's flags and rejects values no run could use.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: demo [flags]\n\n"+
			"Runs an ebb backfill of public.demo_orders end to end under live traffic.\n"+
			"Needs DATABASE_URL and REDIS_URL: eval \"$(scripts/services.sh)\" first.\n\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.binDir, "bin", "bin", "directory holding the worker and enqueuer binaries")
	fs.Int64Var(&cfg.rows, "rows", 1_000_000, "rows to seed into demo_orders")
	fs.StringVar(&cfg.dbName, "db", "ebb_demo", "database to create (if missing) and seed")
	fs.IntVar(&cfg.workers, "workers", 2, "worker processes to start")
	fs.IntVar(&cfg.concurrency, "concurrency", 1, "ranges each worker processes at once (-concurrency of the worker)")
	fs.IntVar(&cfg.trafficWorkers, "traffic-workers", 4, "concurrent live-traffic clients")
	fs.DurationVar(&cfg.think, "think", 5*time.Millisecond, "pause after each live-traffic op, per client")
	fs.DurationVar(&cfg.baseline, "baseline", 3*time.Second, "how long to measure live traffic before the backfill starts")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "give up if the job is not done or failed by then")
	fs.DurationVar(&cfg.readyTimeout, "ready-timeout", 30*time.Second, "how long to wait for each worker's /healthz")
	// Above the worker's own -shutdown-timeout (30 s by default): a worker
	// finishes and commits its current batch before it lets go of a range,
	// and killing it sooner would turn a clean hand-back into a redo.
	fs.DurationVar(&cfg.stopGrace, "stop-grace", 45*time.Second, "how long a worker may take to exit after SIGTERM before it is killed")
	fs.Float64Var(&cfg.pauseAt, "pause-at", 30, "pause the job with enqueuer pause once this percent of the rows is written, then resume it (0: never)")
	fs.DurationVar(&cfg.pauseFor, "pause-for", 3*time.Second, "how long the job stays paused before enqueuer resume")
	fs.BoolVar(&cfg.seedOnly, "seed-only", false, "only seed the table and measure baseline traffic; needs no Redis and no ebb binaries")
	fs.BoolVar(&cfg.verbose, "v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case cfg.rows < 1:
		return cfg, fmt.Errorf("-rows must be at least 1, got %d", cfg.rows)
	case cfg.workers < 1:
		return cfg, fmt.Errorf("-workers must be at least 1, got %d", cfg.workers)
	case cfg.concurrency < 1:
		return cfg, fmt.Errorf("-concurrency must be at least 1, got %d", cfg.concurrency)
	case cfg.trafficWorkers < 1:
		return cfg, fmt.Errorf("-traffic-workers must be at least 1, got %d", cfg.trafficWorkers)
	case cfg.think < 0:
		return cfg, fmt.Errorf("-think must not be negative, got %s", cfg.think)
	case cfg.baseline <= 0:
		return cfg, fmt.Errorf("-baseline must be positive, got %s", cfg.baseline)
	case cfg.timeout <= 0:
		return cfg, fmt.Errorf("-timeout must be positive, got %s", cfg.timeout)
	case cfg.pauseAt < 0 || cfg.pauseAt >= 100:
		return cfg, fmt.Errorf("-pause-at must be in [0, 100), got %g", cfg.pauseAt)
	case cfg.pauseFor < 0:
		return cfg, fmt.Errorf("-pause-for must not be negative, got %s", cfg.pauseFor)
	case cfg.dbName == "":
		return cfg, errors.New("-db must not be empty")
	}
	return cfg, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(2)
	}
	level := slog.LevelInfo
	if cfg.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		// Back to the default handler: a second Ctrl-C quits at once. The
		// workers still get SIGTERM then, through Pdeathsig.
		stop()
	}()
	err = run(ctx, cfg, os.Environ(), os.Stdout, logger)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}
