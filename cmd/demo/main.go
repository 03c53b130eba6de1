// Command demo runs a real ebb backfill end to end under live traffic.
//
// It seeds public.demo_orders in database ebb_demo with pending rows, starts
// a light point-read/point-update load against it, starts a small worker
// fleet, plans and starts the job with the enqueuer, follows its status, and
// then checks with SQL that every row holds exactly the value the job
// computes. It reports the live traffic's p95 latency before and during the
// backfill, which is the number ebb exists to protect.
//
// The demo drives the real bin/worker and bin/enqueuer as subprocesses
// through their command-line contract only; it imports nothing of ebb, so it
// exercises what an operator would run. It needs DATABASE_URL and REDIS_URL,
// which scripts/services.sh provides:
//
//	go build -o bin/ ./cmd/... && eval "$(scripts/services.sh)" && bin/demo -bin bin
//
// Each run uses a fresh job name and queue, so it never sees an earlier run's
// ledger. The demo_orders table is kept afterwards for inspection; the run's
// Redis keys are removed.
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
	seedOnly       bool
	verbose        bool
}

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
	err = run(ctx, cfg, os.Stdout, logger)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}
