package metrics_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/metrics"
)

// TestProgressCollector: what each job exports, and that a job (or the job
// list) that cannot be read leaves a gap instead of failing the scrape.
func TestProgressCollector(t *testing.T) {
	t.Parallel()
	errRedis := errors.New("redis down")
	jobs := map[string]metrics.JobProgress{
		"running": {RangesTotal: 10, RangesDone: 4, RangesFailed: 1, Progress: 0.45, ETASeconds: 120},
		"young":   {RangesTotal: 3, Progress: 0, ETASeconds: -1},
		"done":    {RangesTotal: 2, RangesDone: 2, Progress: 1, ETASeconds: 0},
	}
	tests := []struct {
		name     string
		jobs     []string
		jobsErr  error
		broken   string // a job whose read fails
		expected string
	}{
		{
			name: "every state, eta omitted while unknown",
			jobs: []string{"running", "young", "done"},
			expected: `
# HELP ebb_eta_seconds Time left at the job's average rate since its first start; absent while unknown.
# TYPE ebb_eta_seconds gauge
ebb_eta_seconds{backfill="done"} 0
ebb_eta_seconds{backfill="running"} 120
# HELP ebb_progress_ratio Share of the job done (0..1): rows written against the planner's estimate, or ranges done without one.
# TYPE ebb_progress_ratio gauge
ebb_progress_ratio{backfill="done"} 1
ebb_progress_ratio{backfill="running"} 0.45
ebb_progress_ratio{backfill="young"} 0
# HELP ebb_ranges Range tasks of the job by state: done, failed, pending (neither yet). The same on every worker.
# TYPE ebb_ranges gauge
ebb_ranges{backfill="done",state="done"} 2
ebb_ranges{backfill="done",state="failed"} 0
ebb_ranges{backfill="done",state="pending"} 0
ebb_ranges{backfill="running",state="done"} 4
ebb_ranges{backfill="running",state="failed"} 1
ebb_ranges{backfill="running",state="pending"} 5
ebb_ranges{backfill="young",state="done"} 0
ebb_ranges{backfill="young",state="failed"} 0
ebb_ranges{backfill="young",state="pending"} 3
`,
		},
		{
			name:   "a job that cannot be read is left out",
			jobs:   []string{"running", "done"},
			broken: "running",
			expected: `
# HELP ebb_eta_seconds Time left at the job's average rate since its first start; absent while unknown.
# TYPE ebb_eta_seconds gauge
ebb_eta_seconds{backfill="done"} 0
# HELP ebb_progress_ratio Share of the job done (0..1): rows written against the planner's estimate, or ranges done without one.
# TYPE ebb_progress_ratio gauge
ebb_progress_ratio{backfill="done"} 1
# HELP ebb_ranges Range tasks of the job by state: done, failed, pending (neither yet). The same on every worker.
# TYPE ebb_ranges gauge
ebb_ranges{backfill="done",state="done"} 2
ebb_ranges{backfill="done",state="failed"} 0
ebb_ranges{backfill="done",state="pending"} 0
`,
		},
		{name: "no job list, nothing exported", jobsErr: errRedis},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := metrics.NewProgressCollector(metrics.ProgressConfig{
				JobsFunc: func(context.Context) ([]string, error) { return tc.jobs, tc.jobsErr },
				ProgressFunc: func(_ context.Context, job string) (metrics.JobProgress, error) {
					if job == tc.broken {
						return metrics.JobProgress{}, errRedis
					}
					return jobs[job], nil
				},
				Logger: ebbtest.Logger(t),
			})
			require.NoError(t, err)
			reg := prometheus.NewPedanticRegistry()
			require.NoError(t, reg.Register(c))
			require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(tc.expected)))
		})
	}
}

// TestProgressCollectorTimeout: a Redis that hangs costs the scrape at most
// the timeout, and the scrape still succeeds.
func TestProgressCollectorTimeout(t *testing.T) {
	t.Parallel()
	c, err := metrics.NewProgressCollector(metrics.ProgressConfig{
		JobsFunc: func(context.Context) ([]string, error) { return []string{"a", "b", "c"}, nil },
		ProgressFunc: func(ctx context.Context, _ string) (metrics.JobProgress, error) {
			<-ctx.Done() // a read that only ends with its context
			return metrics.JobProgress{}, ctx.Err()
		},
		Timeout: 50 * time.Millisecond,
		Logger:  ebbtest.Logger(t),
	})
	require.NoError(t, err)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	n, err := testutil.GatherAndCount(reg)
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestProgressCollectorConfig(t *testing.T) {
	t.Parallel()
	_, err := metrics.NewProgressCollector(metrics.ProgressConfig{})
	require.ErrorContains(t, err, "JobsFunc")
}
