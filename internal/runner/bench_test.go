package runner_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/keyspace"
	"github.com/ebbhq/ebb/internal/rangetask"
	"github.com/ebbhq/ebb/internal/runner"
)

// BenchmarkRange measures one worker walking a 20,000-key range at several
// write batch sizes with no sleep: the cost per row of ebb's loop (read,
// transaction, checkpoint) against the real servers.
func BenchmarkRange(b *testing.B) {
	for _, size := range []int{100, 500, 2000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				bt := setup(b)
				bt.seed(20_000)
				// No guard loop runs here: measure the write path alone.
				spec := bt.spec(fmt.Sprintf("task_span: 20000\nread_batch: 5000\nbatch: %d\nguard: {rules: []}\n", size))
				bt.start(spec)
				r, err := runner.New(runner.Config{Ledger: bt.ledger, Pools: bt.pools()})
				require.NoError(b, err)
				payload := rangetask.Payload{Job: bt.job, Range: 0, Lo: keyspace.Int(1), Hi: keyspace.Int(20_000)}
				task, _, err := rangetask.NewTask(payload)
				require.NoError(b, err)
				b.StartTimer()
				require.NoError(b, r.ProcessTask(context.Background(), asynq.NewTask(task.Type(), task.Payload())))
			}
			b.ReportMetric(float64(20_000*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
