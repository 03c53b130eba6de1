package runner_test

import (
	"bufio"
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/keyspace"
	"github.com/ebbhq/ebb/internal/rangetask"
	"github.com/ebbhq/ebb/internal/runner"
	"github.com/ebbhq/ebb/internal/throwaway"
)

// BenchmarkRedisPerBatch counts the Redis commands one committed batch
// costs, for issue 12's target of at most 10: INFO commandstats deltas on
// a throwaway redis-server that only this benchmark talks to (commands
// run inside Lua scripts count too), around one worker walking a
// 20,000-row range in batches of 500 (40 batches). "defaults" has no rate
// and no max_workers; "rate+slots" turns on the fleet rate limiter and the
// max_workers slots.
func BenchmarkRedisPerBatch(b *testing.B) {
	for _, tc := range []struct{ name, extra string }{
		{"defaults", ""},
		{"rate+slots", "rate: 1000000\nmax_workers: 4\n"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			rdb := throwawayRedis(b)
			var cmds, batches int64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				bt := setup(b)
				bt.seed(20_000)
				ctl := control.New(rdb, "bench:", ebbtest.Logger(b))
				led := ctl.Ledger()
				spec := bt.spec("task_span: 20000\nread_batch: 5000\nbatch: 500\nsleep: 0s\nguard: {rules: []}\n" + tc.extra)
				_, err := ctl.Start(context.Background(), bt.db.Pool, spec, "benchq")
				require.NoError(b, err)
				r, err := runner.New(runner.Config{Ledger: led, Pools: bt.pools()})
				require.NoError(b, err)
				task, _, err := rangetask.NewTask(rangetask.Payload{Job: bt.job, Range: 0, Lo: keyspace.Int(1), Hi: keyspace.Int(20_000)})
				require.NoError(b, err)
				before := commandCalls(b, rdb)
				b.StartTimer()
				require.NoError(b, r.ProcessTask(context.Background(), asynq.NewTask(task.Type(), task.Payload())))
				b.StopTimer()
				cmds += commandCalls(b, rdb) - before - 1 // the INFO that read before
				st, err := ctl.Status(context.Background(), bt.job)
				require.NoError(b, err)
				batches += st.Batches
				_ = ctl.Close() // the shared client stays open: asynq says so, harmlessly
			}
			b.ReportMetric(float64(cmds)/float64(batches), "redis-cmds/batch")
		})
	}
}

// throwawayRedis starts a redis-server of its own, which only this
// benchmark talks to.
func throwawayRedis(b *testing.B) *redis.Client {
	b.Helper()
	return ebbtest.Client(b, ebbtest.ThrowawayRedis(b, throwaway.RedisOptions{}))
}

// commandCalls sums the calls of every command in INFO commandstats.
func commandCalls(b *testing.B, rdb *redis.Client) int64 {
	b.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	require.NoError(b, err)
	var total int64
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		_, rest, ok := strings.Cut(sc.Text(), ":calls=")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.SplitN(rest, ",", 2)[0], 10, 64)
		require.NoError(b, err)
		total += n
	}
	return total
}
