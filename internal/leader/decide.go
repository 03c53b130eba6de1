package leader

import (
	"context"
	"log/slog"
	"time"

	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/metrics"
)

// decide samples, steps the rules, and builds the decision with the
// schedule and the fleet's observed rate (guard.Decide does the
// arithmetic). It also logs a change of state and exports the signals.
func (g *Leader) decide(ctx context.Context, job string, cur *leading, prog ledger.Progress, now time.Time) *guard.Decision {
	spec := cur.spec
	readings := cur.sampler.Sample(ctx)
	v := cur.eval.Step(now, readings, cur.baseline)

	// Observed fleet rate since the last check: the base a slow-down or a
	// window under x1 cuts from when the job sets no rate of its own. Only
	// a rate the fleet reached unthrottled is a base: refreshing it from
	// rows/s already cut by a x0.25 window (then cut again by the follower)
	// decayed the rate toward zero, one check at a time.
	var observed float64
	if dt := now.Sub(cur.rowsAt).Seconds(); dt > 0 {
		observed = float64(prog.Rows-cur.rows) / dt
		if !cur.throttled && observed > 0 {
			cur.base = observed
		}
	}
	cur.rows, cur.rowsAt = prog.Rows, now

	sched, window := spec.Schedule.Factor(now)
	chk := guard.Check{
		Verdict: v, GuardFactor: cur.factor, Base: cur.base, Schedule: sched, Window: window,
		Rules: cur.eval.States(), Leader: g.cfg.ID, Now: now, CheckEvery: spec.Guard.CheckEvery.D(),
	}
	if spec.AutoRate {
		chk.Auto = &guard.AutoSettings{Start: spec.RateStart, Max: spec.RateMax}
		if spec.Objective != nil {
			chk.Auto.Settle = spec.Objective.Settle.D()
		}
		chk.AutoPrev, chk.Observed = cur.auto, observed
	}
	d := guard.Decide(chk)
	d.RowsPerSec = observed
	if d.Auto != nil {
		g.steered(ctx, job, cur.auto, *d.Auto, observed)
		cur.auto = *d.Auto
	}
	cur.factor = d.GuardFactor
	if d.State != cur.state {
		level := slog.LevelInfo
		if d.State != guard.StateRun {
			level = slog.LevelWarn
		}
		g.log.Log(ctx, level, "guard decision changed", slog.String("job", job), slog.String("from", string(cur.state)),
			slog.String("to", string(d.State)), slog.Any("reasons", d.Reasons))
		cur.state = d.State
	}
	cur.throttled = d.Throttled()
	g.export(job, v.Signals)
	return d
}

// steered logs a change of rate: auto's rate with the numbers behind it,
// and exports the rate the fleet now follows.
func (g *Leader) steered(ctx context.Context, job string, prev, next guard.AutoState, observed float64) {
	if m := g.cfg.Metrics; m != nil {
		m.AutoRate.WithLabelValues(job).Set(next.Rate)
	}
	if next.Rate == prev.Rate {
		return
	}
	g.log.InfoContext(ctx, "auto rate changed", slog.String("job", job), slog.Float64("from", prev.Rate),
		slog.Float64("to", next.Rate), slog.Float64("observed_rows_per_sec", observed), slog.String("why", next.Why))
}

// export sets the job's signal and limit gauges from one check, when the
// leader has metrics.
func (g *Leader) export(job string, signals []guard.SignalView) {
	m := g.cfg.Metrics
	if m == nil {
		return
	}
	for _, s := range signals {
		if s.Value == nil {
			// A blind rule has no resolved limits either; keep the
			// last ones rather than blank the dashboard's lines.
			continue
		}
		m.GuardSignal.WithLabelValues(job, s.Rule).Set(*s.Value)
		// A limit the rule lacks (or lost in an edited spec) is deleted,
		// not zeroed: a zero line would read as "pause above 0".
		for kind, limit := range map[string]*float64{
			metrics.ThresholdSlow: s.Slow, metrics.ThresholdPause: s.Pause, metrics.ThresholdClear: s.Clear,
		} {
			if limit != nil {
				m.GuardThreshold.WithLabelValues(job, s.Rule, kind).Set(*limit)
			} else {
				m.GuardThreshold.DeleteLabelValues(job, s.Rule, kind)
			}
		}
	}
}
