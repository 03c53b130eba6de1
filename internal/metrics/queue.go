package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// QueueConfig configures a QueueCollector.
type QueueConfig struct {
	// PingFunc tells whether Redis answers. Required.
	PingFunc func(ctx context.Context) error
	// Timeout bounds the ping; default DefaultScrapeTimeout.
	Timeout time.Duration
	// Logger defaults to a discarding logger; a skipped scrape is logged at
	// debug.
	Logger *slog.Logger
}

// QueueCollector exports asynq's own queue metrics (asynq_queue_size,
// asynq_tasks_enqueued_total{queue,state}, asynq_queue_latency_seconds,
// asynq_tasks_processed_total, asynq_tasks_failed_total,
// asynq_queue_paused_total, asynq_queue_memory_usage_approx_bytes) for every
// queue on the Redis, through asynq's x/metrics collector. Like ebb_ranges
// they are the same on every worker.
//
// It wraps that collector for two reasons. Upstream reads Redis in Describe,
// so registering it directly would hit Redis at startup; this one describes
// nothing (an unchecked collector; the asynq_ names cannot clash with ebb's).
// And upstream has no timeout and reports errors through the standard log
// package on every scrape, so a ping first skips the whole read, quietly,
// while Redis is down.
type QueueCollector struct {
	cfg   QueueConfig
	inner prometheus.Collector
}

// NewQueueCollector returns a collector reading through inspector. The
// caller owns the inspector and closes it.
func NewQueueCollector(inspector *asynq.Inspector, cfg QueueConfig) (*QueueCollector, error) {
	if inspector == nil || cfg.PingFunc == nil {
		return nil, errors.New("metrics: NewQueueCollector needs an inspector and QueueConfig.PingFunc")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultScrapeTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &QueueCollector{cfg: cfg, inner: asynqmetrics.NewQueueMetricsCollector(inspector)}, nil
}

// Describe implements prometheus.Collector and describes nothing; see the
// type's comment.
func (c *QueueCollector) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (c *QueueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	if err := c.cfg.PingFunc(ctx); err != nil {
		c.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "queue metrics: redis unreachable", slog.Any("err", err))
		return
	}
	c.inner.Collect(ch)
}
