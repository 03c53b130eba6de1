package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/ebbhq/ebb/internal/child"
	"github.com/ebbhq/ebb/internal/clock"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// demoTable returns the table the job file names (public.demo_orders).
func demoTable() pgx.Identifier { return pgx.Identifier{"public", "demo_orders"} }

// warmup is dropped before the baseline window: the first ops of each
// client pay for connecting and for cold caches, which the backfill window
// would not, and would inflate the baseline.
const warmup = 500 * time.Millisecond

// demo carries what every step of one run needs.
type demo struct {
	cfg config
	// environ is the environment the demo was started with: it holds
	// DATABASE_URL and REDIS_URL, and the workers and the enqueuer inherit
	// it (EBB_PREFIX included), with DATABASE_URL pointed at the demo's
	// database.
	environ []string
	out     io.Writer
	log     *slog.Logger
}

// jobRun is one backfill job of the demo: its names, files and the enqueuer
// that steers it.
type jobRun struct {
	job, queue string
	jobPath    string
	logDir     string // job file and worker logs, kept after the run
	workerBin  string
	enq        *enqueuer
	redisURL   string
}

// run performs one demo as a list of steps. Every resource a step starts is
// released by a defer registered right after it, so Ctrl-C, a failed step
// and success all stop the workers and the traffic and clean up the job, in
// reverse order.
func run(ctx context.Context, cfg config, environ []string, out io.Writer, logger *slog.Logger) error {
	d := &demo{cfg: cfg, environ: environ, out: out, log: logger}
	dbURL, redisURL, err := d.urls()
	if err != nil {
		return err
	}
	var bins binaries
	if !cfg.seedOnly {
		// Before seeding a million rows, not after.
		if bins, err = findBinaries(cfg.binDir); err != nil {
			return err
		}
		closeRedis, err := d.embeddedRedis(redisURL)
		if err != nil {
			return err
		}
		// Registered first, so it closes last: the workers must be gone
		// before their Redis is.
		defer closeRedis()
	}
	pool, demoURL, err := d.prepareTable(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if cfg.seedOnly {
		return d.seedOnly(ctx, pool)
	}
	r, err := d.newJobRun(bins, demoURL, redisURL)
	if err != nil {
		return err
	}
	return d.backfill(ctx, pool, r)
}

// backfill runs the job under live traffic and verifies it: workers,
// traffic and its baseline, enqueuer plan and start, progress, verify,
// cleanup, and the result last.
func (d *demo) backfill(ctx context.Context, pool *pgxpool.Pool, r *jobRun) (err error) {
	fleet, err := d.startWorkers(ctx, r)
	defer fleet.stop(d.cfg.stopGrace, d.log)
	if err != nil {
		return err
	}
	tr := d.startTraffic(ctx, pool)
	defer tr.stop()
	base, err := tr.measureBaseline(ctx, d.cfg.baseline)
	if err != nil {
		return err
	}
	d.printf("baseline over %s: %s\n", d.cfg.baseline, formatSummary(base))

	if err := r.enq.show(ctx, toolTimeout, "plan", "-job", r.jobPath); err != nil {
		return err
	}
	// From the start on the job lives in Redis: whatever happens next, the
	// fleet stops and the job is cleaned up. The happy path cleans up
	// before printing the result; this covers the others.
	cleaned := false
	defer func() {
		if !cleaned {
			err = errors.Join(err, d.cleanup(ctx, r, fleet, false))
		}
	}()
	tr.rec.setPhase(phaseBackfill)
	if err := r.enq.show(ctx, toolTimeout, "start", "-job", r.jobPath, "-queue", r.queue); err != nil {
		return err
	}
	o, err := d.follow(ctx, r, fleet, tr.rec)
	tr.stop()
	// Stop the fleet before verifying, so verify sees the table at rest.
	fleet.stop(d.cfg.stopGrace, d.log)
	if err != nil {
		return err
	}
	verifyErr := d.verify(ctx, r, o)
	cleaned = true
	cleanErr := d.cleanup(ctx, r, fleet, o.final.State == stateDone)
	d.report(o, verifyErr, base, tr.rec)
	if err := errors.Join(verifyErr, cleanErr); err != nil {
		return err
	}
	d.printf("OK\n")
	return nil
}

// urls returns DATABASE_URL and REDIS_URL; REDIS_URL may be empty only with
// -seed-only, which needs no Redis.
func (d *demo) urls() (dbURL, redisURL string, err error) {
	dbURL, redisURL = child.Getenv(d.environ, "DATABASE_URL"), child.Getenv(d.environ, "REDIS_URL")
	if dbURL == "" {
		return "", "", errors.New(`DATABASE_URL is not set; run: eval "$(scripts/services.sh)"`)
	}
	if redisURL == "" && !d.cfg.seedOnly {
		return "", "", errors.New(`REDIS_URL is not set; run: eval "$(scripts/services.sh)"`)
	}
	return dbURL, redisURL, nil
}

// embeddedRedis hosts Redis inside the demo when scripts/services.sh found
// no redis-server (EBB_EMBEDDED_REDIS=1). The returned func closes it.
func (d *demo) embeddedRedis(redisURL string) (closeFunc func(), err error) {
	if child.Getenv(d.environ, "EBB_EMBEDDED_REDIS") != "1" {
		return func() {}, nil
	}
	m, err := startEmbeddedRedis(redisURL)
	if err != nil {
		return nil, err
	}
	d.printf("NOTE: embedded demo Redis (miniredis) on %s, inside this process.\n"+
		"      It is for a one-machine demo only, never for a fleet: install redis-server for real use.\n", m.Addr())
	return m.Close, nil
}

// prepareTable creates the demo's database if missing, opens a pool on it
// sized for the live traffic, and seeds demo_orders. It returns the pool
// and the database's URL, which the workers and the enqueuer get.
func (d *demo) prepareTable(ctx context.Context, dbURL string) (*pgxpool.Pool, string, error) {
	created, err := ensureDatabase(ctx, dbURL, d.cfg.dbName)
	if err != nil {
		return nil, "", err
	}
	demoURL, err := withDatabase(dbURL, d.cfg.dbName)
	if err != nil {
		return nil, "", err
	}
	pcfg, err := poolConfig(demoURL, int32(d.cfg.trafficWorkers)+2)
	if err != nil {
		return nil, "", err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, "", fmt.Errorf("connect to database %s: %w", d.cfg.dbName, err)
	}
	if created {
		d.printf("created database %s\n", d.cfg.dbName)
	}
	d.printf("seeding %s with %d rows in database %s ...\n", demoTable().Sanitize(), d.cfg.rows, d.cfg.dbName)
	seedStart := time.Now()
	if err := seedTable(ctx, pool, demoTable(), d.cfg.rows); err != nil {
		pool.Close()
		return nil, "", err
	}
	d.printf("seeded in %s\n", time.Since(seedStart).Round(time.Millisecond))
	return pool, demoURL, nil
}

// newJobRun names the run's job and queue and writes its job file.
func (d *demo) newJobRun(bins binaries, demoURL, redisURL string) (*jobRun, error) {
	job, queue, err := runNames()
	if err != nil {
		return nil, err
	}
	logDir, err := os.MkdirTemp("", "ebb-demo-")
	if err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	jobPath, err := writeJobFile(logDir, job)
	if err != nil {
		return nil, err
	}
	d.printf("job %s, queue %s\njob file %s\nlogs in %s (kept after the run)\n", job, queue, jobPath, logDir)
	env := child.SetEnv(child.SetEnv(d.environ, "DATABASE_URL", demoURL), "REDIS_URL", redisURL)
	return &jobRun{
		job: job, queue: queue, jobPath: jobPath, logDir: logDir, workerBin: bins.worker, redisURL: redisURL,
		enq: &enqueuer{bin: bins.enqueuer, env: env, out: d.out},
	}, nil
}

// seedOnly measures live traffic against the freshly seeded table, with no
// backfill: a check of the seeding and traffic parts without ebb binaries.
func (d *demo) seedOnly(ctx context.Context, pool *pgxpool.Pool) error {
	tr := d.startTraffic(ctx, pool)
	s, err := tr.measureBaseline(ctx, d.cfg.baseline)
	tr.stop()
	if err != nil {
		return err
	}
	d.printf("live traffic over %s: %s\n", d.cfg.baseline, formatSummary(s))
	d.printf("table %s in database %s is kept; -seed-only ran no backfill\n", demoTable().Sanitize(), d.cfg.dbName)
	return nil
}

// traffic is the live load of one run and the latencies it recorded.
type traffic struct {
	rec  *recorder
	stop func() // cancels the clients and waits for them; idempotent
}

// startTraffic starts the live-traffic clients against the demo table.
func (d *demo) startTraffic(ctx context.Context, pool *pgxpool.Pool) *traffic {
	rec := newRecorder()
	tctx, cancel := context.WithCancel(ctx)
	wait := runTraffic(tctx, pool, trafficConfig{
		Table: demoTable(), Rows: d.cfg.rows, Workers: d.cfg.trafficWorkers, Think: d.cfg.think,
	}, rec, d.log)
	d.printf("live traffic: %d clients, point reads and every 5th op a one-row update, %s think time\n",
		d.cfg.trafficWorkers, d.cfg.think)
	return &traffic{rec: rec, stop: sync.OnceFunc(func() { cancel(); wait() })}
}

// measureBaseline drops the warm-up, then files the next window's ops under
// phaseBaseline and returns their summary.
func (t *traffic) measureBaseline(ctx context.Context, window time.Duration) (latencySummary, error) {
	t.rec.setPhase(phaseIgnore)
	if err := waitFor(ctx, warmup); err != nil {
		return latencySummary{}, err
	}
	t.rec.setPhase(phaseBaseline)
	err := waitFor(ctx, window)
	t.rec.setPhase(phaseIgnore)
	return t.rec.summary(phaseBaseline), err
}

// waitFor waits d, or less if ctx ends first. The windows it times are
// measurement intervals, not guesses at when something will be ready.
func waitFor(ctx context.Context, d time.Duration) error {
	if err := clock.Sleep(ctx, d); err != nil {
		return fmt.Errorf("interrupted: %w", context.Cause(ctx))
	}
	return nil
}

func (d *demo) printf(format string, args ...any) { fmt.Fprintf(d.out, format, args...) }
