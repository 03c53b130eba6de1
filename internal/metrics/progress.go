package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultScrapeTimeout bounds the Redis reads of one scrape. Prometheus'
// default scrape timeout is 10 s; staying far below it means a slow Redis
// costs a gap in the progress series, never a failed scrape that also drops
// the worker's own counters.
const DefaultScrapeTimeout = 2 * time.Second

// JobProgress is one job's progress as ProgressCollector exports it.
type JobProgress struct {
	RangesTotal  int64
	RangesDone   int64
	RangesFailed int64
	// Progress is 0..1.
	Progress float64
	// ETASeconds is the time left; negative when unknown, and then not
	// exported: a made-up number would draw a misleading line.
	ETASeconds float64
}

// ProgressConfig configures a ProgressCollector.
type ProgressConfig struct {
	// JobsFunc lists the jobs to export. Required.
	JobsFunc func(ctx context.Context) ([]string, error)
	// ProgressFunc reads one job's progress. Required. It runs for every job
	// on every scrape of every worker, so it should be one cheap read: the
	// worker reads the ledger snapshot and derives the figures with
	// progress.Of, never a full status.
	ProgressFunc func(ctx context.Context, job string) (JobProgress, error)
	// Timeout bounds all reads of one scrape; default DefaultScrapeTimeout.
	Timeout time.Duration
	// Logger defaults to a discarding logger. Read errors go to it at debug:
	// Redis being down is already visible in /readyz and the gaps it leaves.
	Logger *slog.Logger
}

func (c ProgressConfig) withDefaults() ProgressConfig {
	if c.Timeout <= 0 {
		c.Timeout = DefaultScrapeTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

func (c ProgressConfig) validate() error {
	if c.JobsFunc == nil || c.ProgressFunc == nil {
		return errors.New("metrics: ProgressConfig needs JobsFunc and ProgressFunc")
	}
	return nil
}

// ProgressCollector exports ebb_ranges{job,state}, ebb_progress_ratio{job}
// and ebb_eta_seconds{job}, read from the ledger at every scrape. The values
// are fleet-wide (every worker reports the same numbers), so dashboards
// aggregate them with max, not sum.
type ProgressCollector struct {
	cfg      ProgressConfig
	ranges   *prometheus.Desc
	progress *prometheus.Desc
	eta      *prometheus.Desc
}

// Range states of ebb_ranges.
const (
	RangesDone    = "done"
	RangesFailed  = "failed"
	RangesPending = "pending"
)

// NewProgressCollector returns a collector; register it on the worker's
// registry.
func NewProgressCollector(cfg ProgressConfig) (*ProgressCollector, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &ProgressCollector{
		cfg: cfg.withDefaults(),
		ranges: prometheus.NewDesc("ebb_ranges",
			"Range tasks of the job by state: done, failed, pending (neither yet). The same on every worker.",
			[]string{"backfill", "state"}, nil),
		progress: prometheus.NewDesc("ebb_progress_ratio",
			"Share of the job done (0..1): rows written against the planner's estimate, or ranges done without one.",
			[]string{"backfill"}, nil),
		eta: prometheus.NewDesc("ebb_eta_seconds",
			"Time left at the job's average rate since its first start; absent while unknown.",
			[]string{"backfill"}, nil),
	}, nil
}

// Describe implements prometheus.Collector.
func (c *ProgressCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.ranges
	ch <- c.progress
	ch <- c.eta
}

// Collect implements prometheus.Collector. A job it cannot read in time is
// left out of this scrape; the rest are exported.
func (c *ProgressCollector) Collect(ch chan<- prometheus.Metric) {
	// Collect gets no context from the registry; the timeout is the bound.
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	log := c.cfg.Logger
	jobs, err := c.cfg.JobsFunc(ctx)
	if err != nil {
		log.LogAttrs(ctx, slog.LevelDebug, "progress metrics: list jobs", slog.Any("err", err))
		return
	}
	// A stable order: when time runs out it is the same jobs that go
	// missing every scrape, not a different random few each time.
	jobs = slices.Sorted(slices.Values(jobs))
	for i, job := range jobs {
		if ctx.Err() != nil {
			log.LogAttrs(ctx, slog.LevelDebug, "progress metrics: out of time", slog.Int("skipped", len(jobs)-i), slog.Any("err", ctx.Err()))
			return
		}
		p, err := c.cfg.ProgressFunc(ctx, job)
		if err != nil {
			log.LogAttrs(ctx, slog.LevelDebug, "progress metrics: read job", slog.String("job", job), slog.Any("err", err))
			continue
		}
		pending := max(p.RangesTotal-p.RangesDone-p.RangesFailed, 0)
		ch <- prometheus.MustNewConstMetric(c.ranges, prometheus.GaugeValue, float64(p.RangesDone), job, RangesDone)
		ch <- prometheus.MustNewConstMetric(c.ranges, prometheus.GaugeValue, float64(p.RangesFailed), job, RangesFailed)
		ch <- prometheus.MustNewConstMetric(c.ranges, prometheus.GaugeValue, float64(pending), job, RangesPending)
		ch <- prometheus.MustNewConstMetric(c.progress, prometheus.GaugeValue, p.Progress, job)
		if p.ETASeconds >= 0 {
			ch <- prometheus.MustNewConstMetric(c.eta, prometheus.GaugeValue, p.ETASeconds, job)
		}
	}
}
