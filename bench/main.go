// Command bench measures ebb against the ways people fill a big table by
// hand, under open-loop live traffic, in one run on one table: rows/s, the
// live p50/p95/p99 during each fill (and as a multiple of the baseline
// with no fill), late and failed live requests, and a verification of
// every row. It writes a table to the terminal, bench/results/latest.json
// and a PNG chart. See README.md, "Performance".
//
//	go run ./bench            # make bench: 2,000,000 wide rows
//	go run ./bench -quick     # make bench-quick: 200,000 rows, short budgets
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ebbhq/ebb/internal/throwaway"
)

// config is the run's flags.
type config struct {
	rows     int64
	live     int
	budget   time.Duration
	baseline time.Duration
	warmup   time.Duration
	ceilings []int
	narrow   bool
	only     string
	out      string
	bin      string
	keep     bool
	cmdstats bool
	// report rewrites the outputs from an earlier run's latest.json.
	report string
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if cfg.report != "" {
		if err := rewrite(cfg, stdout); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := bench(ctx, cfg, stdout); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	quick := fs.Bool("quick", false, "200,000 rows, 12 s budgets, one ceiling: under 3 minutes")
	fs.Int64Var(&cfg.rows, "rows", 2_000_000, "rows in the table (ROWS)")
	fs.IntVar(&cfg.live, "live", 400, "live requests a second, open loop")
	fs.DurationVar(&cfg.budget, "budget", 3*time.Minute, "longest one strategy may fill; rows/s is measured over what it filled")
	fs.DurationVar(&cfg.baseline, "baseline", 30*time.Second, "how long the baseline (no fill) is measured")
	ceilings := fs.String("ceilings", "1,2,4", "worker counts of the no-traffic ceilings")
	fs.BoolVar(&cfg.narrow, "narrow", true, "repeat the ceilings on narrow rows")
	fs.StringVar(&cfg.only, "only", "", "comma-separated strategy names to run (default all)")
	fs.StringVar(&cfg.out, "out", "bench/results", "directory for latest.json and latest.png")
	fs.StringVar(&cfg.bin, "bin", "bin", "directory holding the worker and enqueuer binaries (make build)")
	fs.StringVar(&cfg.report, "report", "", "no run: print and rewrite the outputs (-out) from this earlier latest.json")
	fs.BoolVar(&cfg.cmdstats, "commandstats", false, "print each ebb strategy's Redis commands by name")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the run's directory (job files, worker logs, PostgreSQL's log) and print where")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	// The warm-up outlasts the 5 s window of the p95 the auto strategies
	// steer by, so no strategy starts on the seconds right after a reset.
	cfg.warmup = 10 * time.Second
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["rows"] {
			cfg.rows = 200_000
		}
		if !set["budget"] {
			cfg.budget = 12 * time.Second
		}
		if !set["baseline"] {
			cfg.baseline = 6 * time.Second
		}
		if !set["ceilings"] {
			*ceilings = "2"
		}
		if !set["narrow"] {
			cfg.narrow = false
		}
		if !set["out"] {
			// The full run's files are the ones README.md shows.
			cfg.out = "bench/results/quick"
		}
		cfg.warmup = 6 * time.Second
	}
	for _, f := range strings.Split(*ceilings, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			fmt.Fprintf(stderr, "bench: -ceilings: %q is not a worker count\n", f)
			return cfg, errors.New("bad -ceilings")
		}
		cfg.ceilings = append(cfg.ceilings, n)
	}
	if cfg.rows < 10_000 || cfg.live < 1 {
		fmt.Fprintln(stderr, "bench: -rows must be at least 10000 and -live at least 1")
		return cfg, errors.New("bad flags")
	}
	return cfg, nil
}

// bench runs every strategy and reports.
func bench(ctx context.Context, cfg config, stdout io.Writer) error {
	started := time.Now()
	say := func(format string, args ...any) {
		fmt.Fprintf(stdout, "[%6.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
	}
	worker, err := filepath.Abs(filepath.Join(cfg.bin, "worker"))
	if err != nil {
		return err
	}
	enq, _ := filepath.Abs(filepath.Join(cfg.bin, "enqueuer"))
	for _, b := range []string{worker, enq} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("%s: %w (run make build first)", b, err)
		}
	}
	dir, err := os.MkdirTemp("", "ebb-bench-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer func() {
		if cfg.keep {
			say("kept %s (job files, worker logs, postgres.log)", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()

	dsn, stopDB, err := database(ctx, dir, say)
	if err != nil {
		return err
	}
	defer stopDB()
	rs, err := throwaway.Redis(ctx, dir, throwaway.RedisOptions{})
	if err != nil {
		return err
	}
	defer rs.Stop()
	redisURL := rs.URL
	ropt, _ := redis.ParseURL(redisURL)
	rdb := redis.NewClient(ropt)
	defer rdb.Close()

	pool, err := openPool(ctx, dsn, 64)
	if err != nil {
		return err
	}
	defer pool.Close()

	rec := newRecorder()
	p95URL, stopHTTP, err := serveP95(rec)
	if err != nil {
		return err
	}
	defer stopHTTP()

	r := &run{pool: pool, dsn: dsn, redisURL: redisURL, rdb: rdb, worker: worker, enqueuer: enq, dir: dir,
		rows: cfg.rows, budget: cfg.budget, p95URL: p95URL, progress: say, commandstats: cfg.cmdstats}
	rep := &report{Machine: machine(), Started: started, Rows: cfg.rows, LiveRate: cfg.live, Budget: cfg.budget.String()}

	say("seeding %d wide rows", cfg.rows)
	if err := seed(ctx, pool, cfg.rows, true); err != nil {
		return err
	}
	for _, s := range liveStrategies(cfg) {
		if !cfg.wants(s.Name) {
			continue
		}
		res, err := measure(ctx, r, rec, cfg, s, "wide")
		if err != nil {
			return err
		}
		if s.Name == "baseline" {
			r.baselineP95 = res.P95
		}
		rep.add(res, say)
	}
	for _, width := range widths(cfg) {
		if width == "narrow" {
			say("seeding %d narrow rows", cfg.rows)
			if err := seed(ctx, pool, cfg.rows, false); err != nil {
				return err
			}
		}
		for _, s := range ceilingStrategies(cfg, width) {
			if !cfg.wants(s.Name) {
				continue
			}
			res, err := measure(ctx, r, rec, cfg, s, width)
			if err != nil {
				return err
			}
			rep.add(res, say)
		}
	}
	rep.Seconds = rec.allSeconds()
	rep.judge()
	rep.print(stdout)
	return rep.write(cfg.out, say)
}

// wants says whether -only selects the strategy; the baseline always runs:
// every multiple is of its p95.
// rewrite judges an earlier run's report again and writes its outputs.
func rewrite(cfg config, stdout io.Writer) error {
	b, err := os.ReadFile(cfg.report)
	if err != nil {
		return fmt.Errorf("read the report: %w", err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("%s is not a bench report: %w", cfg.report, err)
	}
	rep.Targets = nil
	rep.judge()
	rep.print(stdout)
	return rep.write(cfg.out, func(format string, args ...any) { fmt.Fprintf(stdout, format+"\n", args...) })
}

func (c config) wants(name string) bool {
	if c.only == "" || name == "baseline" {
		return true
	}
	return slices.ContainsFunc(strings.Split(c.only, ","), func(s string) bool {
		return strings.TrimSpace(s) == name || strings.HasPrefix(name, strings.TrimSpace(s)+"-")
	})
}

func widths(cfg config) []string {
	if cfg.narrow {
		return []string{"wide", "narrow"}
	}
	return []string{"wide"}
}

// database is a throwaway cluster, or a database of its own in the server
// BENCH_DATABASE_URL names.
func database(ctx context.Context, dir string, say func(string, ...any)) (string, func(), error) {
	if dsn := os.Getenv("BENCH_DATABASE_URL"); dsn != "" {
		say("using a new database in BENCH_DATABASE_URL's server")
		return benchDatabase(ctx, dsn)
	}
	say("starting a throwaway PostgreSQL cluster (shared_buffers=128MB)")
	s, err := throwaway.Postgres(ctx, dir, throwaway.PostgresOptions{Settings: []string{
		"shared_buffers=128MB", "fsync=on", "synchronous_commit=on", "track_io_timing=on", "max_wal_size=4GB", "checkpoint_timeout=15min",
	}})
	if err != nil {
		return "", nil, err
	}
	return s.URL, s.Stop, nil
}

// serveP95 serves the live p95 of the last five seconds in ms as plain
// text on loopback: the number the rate: auto strategies steer by, as an
// app would publish its own (the guard's http rule).
func serveP95(rec *recorder) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("listen for the p95 endpoint: %w", err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "%g\n", rec.recentP95())
	})}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String() + "/p95", func() { _ = srv.Close() }, nil
}

// machine names the box the figures come from.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %s/%s, %s", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH, runtime.Version())
}
