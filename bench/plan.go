package main

import (
	"context"
	"fmt"
	"time"

	"github.com/ebbhq/ebb/internal/clock"
)

// The strategies of one run, in the order they run, and how each is
// measured.

// autoJob is the job file of the rate: auto strategies: steered by the
// live p95 this harness publishes (over the last 5 s, hence settle: 5s),
// with the batch path opened up (no sleep, batches sized to 100 ms
// commits) so the rate is the only limit. The objective's max is the
// multiple of the baseline's p95 this run measured, written as an
// absolute number: enqueuer start's own baseline (three samples of the
// last 5 s, just after the table's reset) is a noisier measure of the
// same thing, and once read the cold cache after a reset as the normal.
// The rule pauses only at 200x the baseline: at 20x, 5 s p95 spikes of
// 50-190 ms (commit fsyncs behind the fill's WAL) paused each auto run two
// or three times for the 30 s hold, and the benchmark measured the hold.
func autoJob(multiple float64) func(*run) string {
	return func(r *run) string {
		return fmt.Sprintf(`rate: auto
objective: {signal: live_p95, max: %.3f, settle: 5s}
sleep: 0s
task_span: 20000
batch: {size: 1000, min: 100, max: 5000, target: 100ms}
guard:
  check_every: 1s
  rules:
    - {name: live_p95, http: "P95_URL", pause_above: %.3f}
`, multiple*r.baselineP95, 200*r.baselineP95)
	}
}

// text is a job file body that does not depend on the run.
func text(body string) func(*run) string { return func(*run) string { return body } }

// unlimitedJob is ebb with every limit off: no rate, no sleep, no guard.
const unlimitedJob = `sleep: 0s
task_span: %d
read_batch: 5000
batch: 5000
guard: {rules: []}
`

func liveStrategies(cfg config) []strategy {
	return []strategy{
		{Name: "baseline", Live: true, Note: "no fill: the live latency the others are compared with", run: func(ctx context.Context, _ *run) (fillStats, error) {
			return fillStats{}, clock.Sleep(ctx, cfg.baseline)
		}},
		{Name: "big-update", Live: true, Note: "one UPDATE of every pending row", run: bigUpdate},
		{Name: "commits-50k", Live: true, Note: "a loop of 50,000-row commits by key range", run: sqlChunks(50_000, 0)},
		{Name: "textbook", Live: true, Note: "500-row commits by key range, 100 ms sleep", run: sqlChunks(500, 100*time.Millisecond)},
		{Name: "keyset-1000", Live: true, Note: "WITH batch AS (SELECT id … ORDER BY id LIMIT 1000) UPDATE …, no sleep, from the client", run: keysetLoop(1000)},
		{Name: "keyset-proc-1000", Live: true, Note: "the same keyset loop as one server-side procedure (COMMIT in the loop)", run: keysetProc(1000)},
		{Name: "ebb-defaults", Live: true, Note: "ebb's job-file defaults, 2 worker processes", run: ebbJob(text(""), 2, 1)},
		{Name: "ebb-auto-1.5x", Live: true, Note: "rate: auto, objective live p95 <= 1.5x the baseline's, 2 workers x 2", run: ebbJob(autoJob(1.5), 2, 2)},
		{Name: "ebb-auto-2x", Live: true, Note: "rate: auto, objective live p95 <= 2x the baseline's, 2 workers x 2", run: ebbJob(autoJob(2), 2, 2)},
		{Name: "ebb-auto-3x", Live: true, Note: "rate: auto, objective live p95 <= 3x the baseline's, 2 workers x 2", run: ebbJob(autoJob(3), 2, 2)},
	}
}

// ceilingStrategies are the no-traffic ceilings: N parallel UPDATEs over
// disjoint key ranges next to ebb with every limit off and N workers.
func ceilingStrategies(cfg config, width string) []strategy {
	var out []strategy
	for _, n := range cfg.ceilings {
		span := max(cfg.rows/int64(8*n), 10_000)
		out = append(out,
			strategy{Name: fmt.Sprintf("parallel-update-%d-%s", n, width), Note: fmt.Sprintf("%d UPDATEs at once over disjoint key ranges, no live traffic", n), run: parallelUpdates(n)},
			strategy{Name: fmt.Sprintf("ebb-unlimited-%d-%s", n, width), Note: fmt.Sprintf("ebb with every limit off, %d worker processes, no live traffic", n), run: ebbJob(text(fmt.Sprintf(unlimitedJob, span)), n, 1)},
		)
	}
	return out
}

// measure resets the table, runs s (under live traffic when s.Live, after
// a warm-up that is not counted), and verifies every row.
func measure(ctx context.Context, r *run, rec *recorder, cfg config, s strategy, width string) (result, error) {
	res := result{Name: s.Name, Note: s.Note, Live: s.Live, Width: width}
	took, err := reset(ctx, r.pool)
	if err != nil {
		return res, err
	}
	r.progress("%s: table reset in %s", s.Name, took.Round(100*time.Millisecond))
	var stopTraffic func()
	if s.Live {
		tctx, cancel := context.WithCancel(ctx)
		wait := traffic(tctx, r.pool, cfg.rows, cfg.live, rec)
		stopTraffic = func() { cancel(); wait() }
		if err := clock.Sleep(ctx, cfg.warmup); err != nil {
			stopTraffic()
			return res, err
		}
		rec.endPhase()
	}
	r.progress("%s: %s", s.Name, s.Note)
	res.Start = time.Now()
	st, runErr := s.run(ctx, r)
	res.End = time.Now()
	if !st.Finished.IsZero() && st.Finished.Before(res.End) && st.Finished.After(res.Start) {
		res.End = st.Finished
	}
	res.History = st.History
	if s.Live {
		p := rec.endPhase()
		stopTraffic()
		res.P50, res.P95, res.P99, res.Requests, res.Late, res.Failed = p.P50, p.P95, p.P99, p.Count, p.Late, p.Failed
	}
	if runErr != nil {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		res.Err = runErr.Error()
		r.progress("%s: failed: %v", s.Name, runErr)
	}
	pending, wrong, err := check(ctx, r.pool)
	if err != nil {
		return res, err
	}
	res.Pending, res.Wrong = pending, wrong
	res.Seconds = res.End.Sub(res.Start).Seconds()
	if s.Name != "baseline" {
		res.Rows = cfg.rows - pending
		res.Complete = pending == 0
		if res.Seconds > 0 {
			res.RowsPerSec = float64(res.Rows) / res.Seconds
		}
	}
	res.Batches = st.Batches
	if st.Batches > 0 {
		res.RedisPerBatch = float64(st.RedisCmds) / float64(st.Batches)
	}
	res.WorkerRSSMiB = float64(st.WorkerRSS) / (1 << 20)
	return res, nil
}
