package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// demoTable returns the table the job file names (public.demo_orders).
func demoTable() pgx.Identifier { return pgx.Identifier{"public", "demo_orders"} }

const (
	// warmup is dropped before the baseline window: the first ops of each
	// client pay for connecting and for cold caches, which the backfill
	// window would not, and would inflate the baseline.
	warmup = 500 * time.Millisecond
	// Enqueuer commands are short; these bound a hung one.
	planTimeout   = 2 * time.Minute
	startTimeout  = 2 * time.Minute
	statusTimeout = 15 * time.Second
	// A status command failing this many times in a row means the enqueuer
	// or Redis is gone, not a blip.
	maxStatusFailures = 10
	cleanupTimeout    = 15 * time.Second
)

// demo carries what every step of one run needs.
type demo struct {
	cfg config
	out io.Writer
	log *slog.Logger
}

func (d *demo) printf(format string, args ...any) { fmt.Fprintf(d.out, format, args...) }

// run performs one demo. Every resource it starts is released by a defer
// registered right after the start, so Ctrl-C, a failed step and success all
// stop the workers and the traffic and clean Redis, in reverse order.
func run(ctx context.Context, cfg config, out io.Writer, logger *slog.Logger) (err error) {
	d := &demo{cfg: cfg, out: out, log: logger}

	dbURL := os.Getenv("DATABASE_URL")
	if dbURL == "" {
		return errors.New(`DATABASE_URL is not set; run: eval "$(scripts/services.sh)"`)
	}
	redisURL := os.Getenv("REDIS_URL")
	var workerBin, enqueuerBin string
	if !cfg.seedOnly {
		if redisURL == "" {
			return errors.New(`REDIS_URL is not set; run: eval "$(scripts/services.sh)"`)
		}
		// Before seeding a million rows, not after.
		if workerBin, err = findBinary(cfg.binDir, "worker"); err != nil {
			return err
		}
		if enqueuerBin, err = findBinary(cfg.binDir, "enqueuer"); err != nil {
			return err
		}
		if os.Getenv("EBB_EMBEDDED_REDIS") == "1" {
			m, err := startEmbeddedRedis(redisURL)
			if err != nil {
				return err
			}
			// Registered first, so it closes last: the workers must be gone
			// before their Redis is.
			defer m.Close()
			d.printf("NOTE: embedded demo Redis (miniredis) on %s, inside this process.\n"+
				"      It is for a one-machine demo only, never for a fleet: install redis-server for real use.\n", m.Addr())
		}
	}

	// Database and table.
	created, err := ensureDatabase(ctx, dbURL, cfg.dbName)
	if err != nil {
		return err
	}
	demoURL, err := withDatabase(dbURL, cfg.dbName)
	if err != nil {
		return err
	}
	pcfg, err := poolConfig(demoURL, int32(cfg.trafficWorkers)+2)
	if err != nil {
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("connect to database %s: %w", cfg.dbName, err)
	}
	defer pool.Close()
	if created {
		d.printf("created database %s\n", cfg.dbName)
	}
	d.printf("seeding %s with %d rows in database %s ...\n", demoTable().Sanitize(), cfg.rows, cfg.dbName)
	seedStart := time.Now()
	if err := seedTable(ctx, pool, demoTable(), cfg.rows); err != nil {
		return err
	}
	d.printf("seeded in %s\n", time.Since(seedStart).Round(time.Millisecond))

	if cfg.seedOnly {
		return d.seedOnly(ctx, pool)
	}

	// Redis, names, job file.
	ropts, err := redis.ParseURL(redisURL)
	if err != nil {
		return fmt.Errorf("parse REDIS_URL: %w", err)
	}
	rdb := redis.NewClient(ropts)
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis at %s: %w", ropts.Addr, err)
	}
	job, queue, err := runNames()
	if err != nil {
		return err
	}
	tmpDir, err := os.MkdirTemp("", "ebb-demo-")
	if err != nil {
		return fmt.Errorf("create temp dir: %w", err)
	}
	jobPath, err := writeJobFile(tmpDir, job)
	if err != nil {
		return err
	}
	d.printf("job %s, queue %s\njob file %s\nlogs in %s (kept after the run)\n", job, queue, jobPath, tmpDir)
	env := setEnv(setEnv(os.Environ(), "DATABASE_URL", demoURL), "REDIS_URL", redisURL)

	// Runs after the workers have stopped (defers run in reverse), so no
	// worker recreates a key behind it. Detached from ctx: after Ctrl-C the
	// cleanup is exactly what must still happen.
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		n, cerr := cleanupRedis(cctx, rdb, os.Getenv("EBB_PREFIX"), job, queue)
		if cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up redis: %w", cerr))
			return
		}
		d.printf("removed %d Redis keys of job %s and queue %s\n", n, job, queue)
	}()

	// Workers.
	fleet, err := d.startWorkers(ctx, workerBin, queue, env, tmpDir)
	defer fleet.stop(d.cfg.stopGrace, d.log)
	if err != nil {
		return err
	}

	// Live traffic, and its baseline before any backfill write.
	rec := newRecorder()
	trafficCtx, cancelTraffic := context.WithCancel(ctx)
	waitTraffic := runTraffic(trafficCtx, pool, trafficConfig{
		Table: demoTable(), Rows: cfg.rows, Workers: cfg.trafficWorkers, Think: cfg.think,
	}, rec, d.log)
	stopTraffic := sync.OnceFunc(func() { cancelTraffic(); waitTraffic() })
	defer stopTraffic()
	d.printf("live traffic: %d clients, point reads and every 5th op a one-row update, %s think time\n",
		cfg.trafficWorkers, cfg.think)
	if err := measureBaseline(ctx, rec, cfg.baseline); err != nil {
		return err
	}
	base := rec.summary(phaseBaseline)
	d.printf("baseline over %s: %s\n", cfg.baseline, formatSummary(base))

	// Plan and start.
	if err := d.tool(ctx, planTimeout, enqueuerBin, env, "plan", "-job", jobPath); err != nil {
		return err
	}
	rec.setPhase(phaseBackfill)
	started := time.Now()
	if err := d.tool(ctx, startTimeout, enqueuerBin, env, "start", "-job", jobPath, "-queue", queue); err != nil {
		return err
	}

	final, pollErr := d.follow(ctx, enqueuerBin, env, job, fleet, started)
	elapsed := time.Since(started)
	rec.setPhase(phaseIgnore)
	stopTraffic()
	// Stop the fleet before counting so the verification sees the table at
	// rest, and before the Redis cleanup above runs.
	fleet.stop(d.cfg.stopGrace, d.log)
	if pollErr != nil {
		return pollErr
	}

	// Verify and report.
	counts, err := countTable(ctx, pool, demoTable())
	if err != nil {
		return err
	}
	during := rec.summary(phaseBackfill)
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(final.RowsDone) / s
	}
	d.printf("\n== result ==\n")
	d.printf("job:      %s in %s: %d rows written, %.0f rows/s overall, ranges %d/%d done, %d failed\n",
		final.State, elapsed.Round(100*time.Millisecond), final.RowsDone, rate, final.RangesDone, final.RangesTotal, final.RangesFailed)
	d.printf("verify:   rows with status IS NULL: %d; rows whose status is not 'state_' || legacy_state: %d (of %d)\n",
		counts.Pending, counts.Wrong, counts.Total)
	d.printf("traffic:  baseline        %s\n", formatSummary(base))
	d.printf("          during backfill %s\n", formatSummary(during))
	if base.Ops > 0 && during.Ops > 0 && base.P95 > 0 {
		d.printf("          p95 during backfill is %.2fx the baseline\n", float64(during.P95)/float64(base.P95))
	}
	if lastErr := rec.lastError(); lastErr != nil {
		d.printf("          last traffic error: %v\n", lastErr)
	}
	d.printf("table %s in database %s is kept for inspection\n", demoTable().Sanitize(), cfg.dbName)

	var failures []error
	if final.State != stateDone {
		failures = append(failures, fmt.Errorf("job %s ended %s with %d failed ranges; see the worker logs in %s", job, final.State, final.RangesFailed, tmpDir))
	}
	if counts.Pending != 0 || counts.Wrong != 0 {
		failures = append(failures, fmt.Errorf("verification failed: %d rows still pending, %d rows with a wrong status", counts.Pending, counts.Wrong))
	}
	if err := errors.Join(failures...); err != nil {
		return err
	}
	d.printf("OK\n")
	return nil
}

// seedOnly measures live traffic against the freshly seeded table, with no
// backfill: a check of the seeding and traffic parts without ebb binaries.
func (d *demo) seedOnly(ctx context.Context, pool *pgxpool.Pool) error {
	counts, err := countTable(ctx, pool, demoTable())
	if err != nil {
		return err
	}
	d.printf("rows %d, pending (status IS NULL) %d\n", counts.Total, counts.Pending)
	rec := newRecorder()
	trafficCtx, cancel := context.WithCancel(ctx)
	wait := runTraffic(trafficCtx, pool, trafficConfig{
		Table: demoTable(), Rows: d.cfg.rows, Workers: d.cfg.trafficWorkers, Think: d.cfg.think,
	}, rec, d.log)
	err = measureBaseline(ctx, rec, d.cfg.baseline)
	cancel()
	wait()
	if err != nil {
		return err
	}
	d.printf("live traffic over %s: %s\n", d.cfg.baseline, formatSummary(rec.summary(phaseBaseline)))
	after, err := countTable(ctx, pool, demoTable())
	if err != nil {
		return err
	}
	if after.Pending != counts.Pending {
		return fmt.Errorf("live traffic changed status: %d pending before, %d after", counts.Pending, after.Pending)
	}
	d.printf("table %s in database %s is kept; -seed-only ran no backfill\n", demoTable().Sanitize(), d.cfg.dbName)
	return nil
}

// measureBaseline drops the warm-up, then files the next window's ops under
// phaseBaseline.
func measureBaseline(ctx context.Context, rec *recorder, window time.Duration) error {
	rec.setPhase(phaseIgnore)
	if err := waitFor(ctx, warmup); err != nil {
		return err
	}
	rec.setPhase(phaseBaseline)
	err := waitFor(ctx, window)
	rec.setPhase(phaseIgnore)
	return err
}

// waitFor waits d, or less if ctx ends first. The windows it times are
// measurement intervals, not guesses at when something will be ready.
func waitFor(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("interrupted: %w", context.Cause(ctx))
	case <-t.C:
		return nil
	}
}

func formatSummary(s latencySummary) string {
	if s.Ops == 0 {
		return fmt.Sprintf("no successful ops (%d errors)", s.Errors)
	}
	return fmt.Sprintf("p50 %s  p95 %s  p99 %s  (%d ops, %d errors)",
		roundLatency(s.P50), roundLatency(s.P95), roundLatency(s.P99), s.Ops, s.Errors)
}

func roundLatency(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(10 * time.Microsecond)
}

// tool runs one enqueuer command and shows what it printed.
func (d *demo) tool(ctx context.Context, timeout time.Duration, bin string, env []string, args ...string) error {
	d.printf("\n$ %s %s\n", filepath.Base(bin), strings.Join(args, " "))
	out, err := runTool(ctx, timeout, bin, args, env)
	d.printf("%s", indent(string(out), "  "))
	return err
}

// follow polls the job's status every second, printing progress, until the
// job is done or failed, the deadline passes, a worker dies or ctx ends.
func (d *demo) follow(ctx context.Context, bin string, env []string, job string, fleet *fleet, started time.Time) (jobStatus, error) {
	d.printf("\nfollowing %s status %s --json (every 1s, up to %s)\n", filepath.Base(bin), job, d.cfg.timeout)
	deadline := time.NewTimer(d.cfg.timeout)
	defer deadline.Stop()
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	prog := &progress{totalRows: d.cfg.rows, start: started}
	var last jobStatus
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("interrupted: %w", context.Cause(ctx))
		case <-deadline.C:
			return last, fmt.Errorf("job %s not finished after %s (state %q); raise -timeout or look at the worker logs", job, d.cfg.timeout, last.State)
		case <-ticker.C:
		}
		if err := fleet.checkAlive(); err != nil {
			return last, err
		}
		out, err := runTool(ctx, statusTimeout, bin, []string{"status", job, "--json"}, env)
		var s jobStatus
		if err == nil {
			s, err = parseStatus(out)
		}
		if err != nil {
			if ctx.Err() != nil {
				return last, fmt.Errorf("interrupted: %w", context.Cause(ctx))
			}
			failures++
			d.log.LogAttrs(ctx, slog.LevelWarn, "status failed", slog.String("job", job), slog.Int("in_a_row", failures), slog.Any("err", err))
			if failures >= maxStatusFailures {
				return last, fmt.Errorf("status of job %s failed %d times in a row: %w", job, failures, err)
			}
			continue
		}
		failures = 0
		last = s
		d.printf("%s\n", prog.line(time.Now(), s))
		if s.terminal() {
			return s, nil
		}
	}
}

// fleet is the set of worker processes of one run.
type fleet struct {
	workers []*child
	once    sync.Once
}

// startWorkers starts cfg.workers workers and waits until each answers
// /healthz. The returned fleet is never nil, so the caller can defer its
// stop before looking at the error.
func (d *demo) startWorkers(ctx context.Context, bin, queue string, env []string, dir string) (*fleet, error) {
	f := &fleet{}
	addrs := make([]string, 0, d.cfg.workers)
	for i := 1; i <= d.cfg.workers; i++ {
		addr, err := freeLoopbackAddr()
		if err != nil {
			return f, err
		}
		name := "worker-" + strconv.Itoa(i)
		logPath := filepath.Join(dir, name+".log")
		args := []string{"-queue", queue, "-concurrency", strconv.Itoa(d.cfg.concurrency), "-metrics-addr", addr}
		c, err := startChild(name, bin, args, env, logPath)
		if err != nil {
			return f, err
		}
		f.workers = append(f.workers, c)
		addrs = append(addrs, addr)
		d.printf("%s: pid %d, %s %s, metrics http://%s/metrics, log %s\n",
			name, c.cmd.Process.Pid, filepath.Base(bin), strings.Join(args, " "), addr, logPath)
	}
	for i, c := range f.workers {
		if err := d.waitHealthy(ctx, c, addrs[i]); err != nil {
			return f, err
		}
	}
	return f, nil
}

// waitHealthy polls a worker's /healthz until it answers 200. A worker that
// exits meanwhile is an error; one that never answers only earns a warning,
// since the queue holds the ranges until it does.
func (d *demo) waitHealthy(ctx context.Context, c *child, addr string) error {
	client := &http.Client{Timeout: time.Second}
	url := "http://" + addr + "/healthz"
	deadline := time.Now().Add(d.cfg.readyTimeout)
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		if exited, werr := c.exited(); exited {
			return fmt.Errorf("%s exited during startup (%v); last lines of %s:\n%s", c.name, werr, c.logPath, tailFile(c.logPath, 20))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("%s healthz request: %w", c.name, err)
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			d.log.LogAttrs(ctx, slog.LevelWarn, "worker not healthy yet, going on", slog.String("worker", c.name),
				slog.String("url", url), slog.Duration("waited", d.cfg.readyTimeout))
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("interrupted: %w", context.Cause(ctx))
		case <-ticker.C:
		}
	}
}

// checkAlive reports a worker that exited while the job runs: the demo would
// otherwise wait for ranges nobody processes.
func (f *fleet) checkAlive() error {
	for _, c := range f.workers {
		if exited, werr := c.exited(); exited {
			return fmt.Errorf("%s exited (%v); last lines of %s:\n%s", c.name, werr, c.logPath, tailFile(c.logPath, 20))
		}
	}
	return nil
}

// stop stops every worker at once, each with its own grace period, so the
// fleet takes one grace period to stop rather than one per worker. Only the
// first call does anything.
func (f *fleet) stop(grace time.Duration, logger *slog.Logger) {
	f.once.Do(func() {
		var wg sync.WaitGroup
		for _, c := range f.workers {
			wg.Go(func() {
				if err := c.stop(grace); err != nil {
					logger.LogAttrs(context.Background(), slog.LevelWarn, "worker did not stop cleanly",
						slog.String("worker", c.name), slog.Any("err", err))
				}
			})
		}
		wg.Wait()
	})
}

// findBinary returns dir/name if it is an executable file.
func findBinary(dir, name string) (string, error) {
	path := filepath.Join(dir, name)
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%s binary: %w (build it first with: go build -o %s/ ./cmd/...)", name, err, dir)
	}
	if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", path)
	}
	return path, nil
}

// freeLoopbackAddr asks the kernel for a free port. Another process could
// take it before the worker binds it; a worker that fails to bind exits, and
// the demo reports it.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	return addr, nil
}
