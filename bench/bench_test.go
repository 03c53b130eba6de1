package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRecorder: a second's and a phase's percentiles come from the
// latencies recorded in them; late and failed requests are counted, and a
// failure is not a latency.
func TestRecorder(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	for i := 1; i <= 100; i++ {
		rec.record(time.Duration(i)*time.Millisecond, false)
	}
	rec.record(2*time.Second, false)
	rec.record(0, true)
	s := rec.tick(time.Now())
	require.Equal(t, int64(101), s.Count)
	require.InDelta(t, 96, s.P95, 1)
	require.Equal(t, int64(1), s.Late)
	require.Equal(t, int64(1), s.Failed)
	require.InDelta(t, 96, rec.recentP95(), 1, "the live p95 the auto strategies steer by")

	p := rec.endPhase()
	require.Equal(t, int64(101), p.Count)
	require.InDelta(t, 51, p.P50, 1)
	require.Equal(t, int64(1), p.Late)
	require.Equal(t, int64(1), p.Failed)
	require.Zero(t, rec.endPhase().Count, "a new phase starts empty")
}

// TestJudge: the targets compare strategies of the same run and say which
// were missed, with the figures.
func TestJudge(t *testing.T) {
	t.Parallel()
	rep := &report{}
	say := func(string, ...any) {}
	rep.add(result{Name: "baseline", Live: true, P95: 2, P99: 4}, say)
	rep.add(result{Name: "textbook", Live: true, RowsPerSec: 4500, P95: 4, P99: 8}, say)
	rep.add(result{Name: "ebb-defaults", Live: true, RowsPerSec: 9500, P95: 3, P99: 6, Batches: 10, RedisPerBatch: 8, WorkerRSSMiB: 30}, say)
	rep.add(result{Name: "parallel-update-2-wide", RowsPerSec: 100000}, say)
	rep.add(result{Name: "ebb-unlimited-2-wide", RowsPerSec: 80000, Wrong: 3}, say)
	require.Equal(t, 1.5, rep.find("ebb-defaults").P95x)
	rep.judge()
	met := map[string]bool{}
	for _, tg := range rep.Targets {
		met[tg.Name] = tg.Met
	}
	require.True(t, met["1. ebb defaults vs the textbook loop"])
	require.False(t, met["3. limits off, no traffic: ebb-unlimited-2-wide >= 0.9x parallel-update-2-wide"])
	require.False(t, met["every row right: ebb-unlimited-2-wide"])
	require.True(t, met["4a. Redis commands per committed batch <= 10 (ebb defaults, whole fleet: asynq and the guard included)"])
}

func TestFirstJSON(t *testing.T) {
	t.Parallel()
	require.JSONEq(t, `[{"a":1}]`, string(firstJSON([]byte("[{\"a\":1}]\ntime=... level=INFO msg=x\n"))))
	require.JSONEq(t, `{"state":"done"}`, string(firstJSON([]byte("note\n{\"state\":\"done\"}\n"))))
	require.Nil(t, firstJSON([]byte("no json here")))
}
