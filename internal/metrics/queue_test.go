package metrics_test

import (
	"context"
	"errors"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/metrics"
)

// TestQueueCollector: asynq's queue metrics for a real queue, and nothing
// (but no failed scrape) while Redis does not answer.
func TestQueueCollector(t *testing.T) {
	t.Parallel()
	env := ebbtest.Redis(t)
	client := asynq.NewClientFromRedisClient(env.Client)
	t.Cleanup(func() { _ = client.Close() })
	inspector := asynq.NewInspectorFromRedisClient(env.Client)
	t.Cleanup(func() { _ = inspector.Close() })
	_, err := client.Enqueue(asynq.NewTask("ebbtest", nil), asynq.Queue(env.Queue))
	require.NoError(t, err)

	t.Run("redis answers", func(t *testing.T) {
		c, err := metrics.NewQueueCollector(inspector, metrics.QueueConfig{
			PingFunc: func(ctx context.Context) error { return env.Client.Ping(ctx).Err() },
			Logger:   ebbtest.Logger(t),
		})
		require.NoError(t, err)
		reg := prometheus.NewPedanticRegistry()
		require.NoError(t, reg.Register(c))
		// asynq's collector drops the whole scrape when any queue on the
		// shared Redis vanishes between listing and reading it, which
		// parallel tests' cleanups do: poll.
		ebbtest.Eventually(t, "asynq queue metrics of the test's queue", func() bool {
			mfs, err := reg.Gather()
			require.NoError(t, err)
			size, ok := value(mfs, "asynq_queue_size", map[string]string{"queue": env.Queue})
			if !ok {
				return false
			}
			require.Equal(t, 1.0, size)
			pending, ok := value(mfs, "asynq_tasks_enqueued_total", map[string]string{"queue": env.Queue, "state": "pending"})
			require.True(t, ok)
			require.Equal(t, 1.0, pending)
			return true
		})
	})
	t.Run("redis down", func(t *testing.T) {
		c, err := metrics.NewQueueCollector(inspector, metrics.QueueConfig{
			PingFunc: func(context.Context) error { return errors.New("connection refused") },
			Logger:   ebbtest.Logger(t),
		})
		require.NoError(t, err)
		reg := prometheus.NewPedanticRegistry()
		require.NoError(t, reg.Register(c))
		n, err := testutil.GatherAndCount(reg)
		require.NoError(t, err)
		require.Zero(t, n)
	})
}
