package control_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/throwaway"
)

// manyRanges is a job of 5,000 one-row range tasks on a table of its own.
func manyRanges(t *testing.T) (*ebbtest.DB, *jobspec.Spec) {
	t.Helper()
	db := ebbtest.Schema(t)
	orders := db.Table("orders")
	db.Exec(t, `CREATE TABLE `+orders+` (id bigint PRIMARY KEY, status text)`)
	db.Exec(t, `INSERT INTO `+orders+` SELECT g, NULL FROM generate_series(1, 5000) g`)
	spec, err := jobspec.Parse([]byte(fmt.Sprintf("name: many\ntable: %s\nkey: id\npending: status IS NULL\nset: status = 'x'\ntask_span: 1\n", orders)))
	require.NoError(t, err)
	return db, spec
}

// TestStartRefusesWhatRedisCannotHold: a first start whose range tasks
// would not fit under Redis's maxmemory is refused before anything is
// stored, with the sizes and what to change.
func TestStartRefusesWhatRedisCannotHold(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rs := ebbtest.ThrowawayRedis(t, throwaway.RedisOptions{MaxMemory: "3mb"})
	rdb := ebbtest.Client(t, rs)
	db, spec := manyRanges(t)
	c := control.New(rdb, "", ebbtest.Logger(t))
	t.Cleanup(func() { _ = c.Close() })
	_, err := c.Start(ctx, db.Pool, spec, "q")
	require.ErrorIs(t, err, control.ErrNoRoom)
	require.ErrorContains(t, err, "5000 range tasks")
	require.ErrorContains(t, err, "raise task_span or Redis's maxmemory")
	n, err := rdb.DBSize(ctx).Result()
	require.NoError(t, err)
	require.Zero(t, n, "nothing stored, nothing enqueued")
}

// TestFailedStartLeavesNothing: a first start cut off in the middle of
// enqueuing (here its context ends) removes the tasks it had enqueued and
// the job's keys: nothing is left half-enqueued.
func TestFailedStartLeavesNothing(t *testing.T) {
	t.Parallel()
	rs := ebbtest.ThrowawayRedis(t, throwaway.RedisOptions{})
	rdb := ebbtest.Client(t, rs)
	db, spec := manyRanges(t)
	c := control.New(rdb, "", ebbtest.Logger(t))
	t.Cleanup(func() { _ = c.Close() })
	insp := asynq.NewInspectorFromRedisClient(rdb)
	t.Cleanup(func() { _ = insp.Close() })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if q, err := insp.GetQueueInfo("q"); err == nil && q.Size >= 100 {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	_, err := c.Start(ctx, db.Pool, spec, "q")
	require.ErrorContains(t, err, "context canceled", "asynq's error does not wrap the context's")
	require.ErrorContains(t, err, "undone, nothing of it is left in Redis")

	q, err := insp.GetQueueInfo("q")
	require.NoError(t, err)
	require.Zero(t, q.Size, "no task left")
	_, err = ledger.New(rdb, "").Meta(context.Background(), "many")
	require.ErrorIs(t, err, ledger.ErrNotFound, "no job left")
}

// TestEstimateNotAboveRows: on a table the planner never analyzed, the
// pending estimate start stores is the real count, not the planner's
// guess from the table's pages (which was many times the rows there).
func TestEstimateNotAboveRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := ebbtest.Schema(t)
	orders := db.Table("orders")
	db.Exec(t, `CREATE TABLE `+orders+` (id bigint PRIMARY KEY, status text, pad text)`)
	db.Exec(t, `INSERT INTO `+orders+` SELECT g, CASE WHEN g % 4 = 0 THEN 'done' END, repeat('x', 200) FROM generate_series(1, 1000) g`)
	var plan []map[string]map[string]any
	require.NoError(t, db.Pool.QueryRow(ctx, `EXPLAIN (FORMAT JSON) SELECT 1 FROM `+orders+` WHERE status IS NULL`).Scan(&plan))
	require.NotEqual(t, 750.0, plan[0]["Plan"]["Plan Rows"], "the planner's guess is off, or this test shows nothing")
	t.Logf("planner guessed %v pending rows of 1,000 (750 pending)", plan[0]["Plan"]["Plan Rows"])
	rd := ebbtest.Redis(t)
	spec, err := jobspec.Parse([]byte(fmt.Sprintf("name: est-%s\ntable: %s\nkey: id\npending: status IS NULL\nset: status = 'x'\n", ebbtest.Suffix(), orders)))
	require.NoError(t, err)
	c := control.New(rd.Client, rd.Prefix, ebbtest.Logger(t))
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.Start(ctx, db.Pool, spec, rd.Queue)
	require.NoError(t, err)
	m, err := c.Ledger().Meta(ctx, spec.Name)
	require.NoError(t, err)
	require.Equal(t, int64(750), m.Estimate)
}

// TestStartWarnsAboutBlindPromRule: a prometheus rule whose query returns
// no series at start (traffic that is not there yet) is named in a start
// warning with what it will do and what to set; with on_empty: zero it is
// not, and counts as 0.
func TestStartWarnsAboutBlindPromRule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
	}))
	t.Cleanup(prom.Close)
	db, _ := manyRanges(t)
	rd := ebbtest.Redis(t)
	c := control.New(rd.Client, rd.Prefix, ebbtest.Logger(t))
	c.SetGetenv(func(k string) string {
		if k == "PROMETHEUS_URL" {
			return prom.URL
		}
		return ""
	})
	t.Cleanup(func() { _ = c.Close() })
	for _, tc := range []struct{ onEmpty, want string }{
		{"", "rule errors_5xx: its query returns no series now, which counts as blind (on_empty: blind, the default)"},
		{"\n      on_empty: zero", ""},
	} {
		spec, err := jobspec.Parse([]byte(fmt.Sprintf(`name: prom-%s
table: %s
key: id
pending: status IS NULL
set: status = 'x'
guard:
  rules:
    - name: errors_5xx
      prometheus: sum(rate(http_requests_total{code=~"5.."}[1m]))
      pause_above: 5%s
`, ebbtest.Suffix(), db.Table("orders"), tc.onEmpty)))
		require.NoError(t, err)
		res, err := c.Start(ctx, db.Pool, spec, rd.Queue)
		require.NoError(t, err)
		if tc.want == "" {
			require.Empty(t, res.Warnings)
			continue
		}
		require.Len(t, res.Warnings, 1)
		require.Contains(t, res.Warnings[0], tc.want)
		require.Contains(t, res.Warnings[0], "set on_empty: zero")
	}
}
