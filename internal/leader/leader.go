package leader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/metrics"
	"github.com/ebbhq/ebb/internal/probe"
)

// Config wires the guard loop every worker runs. At most one worker
// per job holds the lease and samples; the others only stand by.
type Config struct {
	Ledger *ledger.Ledger
	// ID names this worker in the lease; unique per process.
	ID string
	// Pools supplies pools by environment variable name (the job's
	// database_env and the guard's replicas).
	Pools  func(ctx context.Context, env string) (*pgxpool.Pool, error)
	Getenv func(string) string
	// Logger defaults to a discarding logger; Metrics may be nil.
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// Tick is how often the loop looks for jobs and due checks; default 1s.
	Tick time.Duration
	// Hold overrides guard.DefaultHold (tests); zero keeps it.
	Hold       time.Duration
	HTTPClient *http.Client
	// Now is the clock decisions are stamped with; default Redis's TIME,
	// the clock workers judge freshness by.
	Now func(ctx context.Context) (time.Time, error)
}

// Leader runs the guard loop.
type Leader struct {
	cfg  Config
	log  *slog.Logger
	jobs map[string]*leading
	// lastErr keeps a failing check from logging the same line every tick.
	lastErr map[string]string
	// cannot remembers jobs this worker failed to lead, so it steps back for
	// a check interval and lets a healthy worker take the lease.
	cannot map[string]leadFailure
	// standby is, per job another worker leads, when this worker next
	// asks for the lease: half a check interval after it last found it
	// taken. Asking every tick cost each standing-by worker a progress
	// read, the spec and a lease script every second, for nothing.
	standby map[string]time.Time
}

// leadFailure is when and why this worker could not lead a job.
type leadFailure struct {
	at  time.Time
	err error
}

// leading is a job this worker leads.
type leading struct {
	spec    *jobspec.Spec
	sampler *probe.Sampler
	eval    *guard.Evaluator
	last    time.Time
	state   guard.State
	factor  float64
	base    float64
	rows    int64
	rowsAt  time.Time
	// throttled is whether the last published decision held an unlimited
	// job below its full speed (paused, or a Base with an effective factor
	// under 1): rows/s observed after it are not the fleet's full speed.
	throttled bool
	baseline  map[string]float64
	// published is what the history last recorded.
	published guard.Published
	// auto is the rate: auto controller's state after the last check.
	auto guard.AutoState
	// pointAt is when this leader last added to the job's series.
	pointAt time.Time
}

// SeriesEvery thins the job's series to at most one point this often,
// so its cap covers hours of the job, not minutes of checks.
const SeriesEvery = 15 * time.Second

// New returns a Leader. It closes nothing it is given: the ledger and the
// pools belong to the caller.
func New(cfg Config) (*Leader, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Leader{cfg: cfg, log: cfg.Logger, jobs: map[string]*leading{}, lastErr: map[string]string{}, cannot: map[string]leadFailure{}, standby: map[string]time.Time{}}, nil
}

func (c Config) validate() error {
	if c.Ledger == nil || c.Pools == nil || c.ID == "" {
		return errors.New("leader: Config needs Ledger, Pools and ID")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Getenv == nil {
		c.Getenv = func(string) string { return "" }
	}
	if c.Tick <= 0 {
		c.Tick = time.Second
	}
	if c.Now == nil {
		c.Now = c.Ledger.Now
	}
	return c
}

// Run checks due jobs every Tick until ctx ends, then gives up its leases so
// another worker takes over at once.
func (g *Leader) Run(ctx context.Context) error {
	t := time.NewTicker(g.cfg.Tick)
	defer t.Stop()
	for {
		g.tick(ctx)
		select {
		case <-ctx.Done():
			g.releaseAll()
			return nil
		case <-t.C:
		}
	}
}

// drop forgets a job this worker no longer leads, and the signal values it
// exported for it: only the leader's numbers are current, and a stale
// gauge on a former leader would draw a second, frozen line.
func (g *Leader) drop(job string) {
	delete(g.cannot, job)
	delete(g.standby, job)
	if _, ok := g.jobs[job]; !ok {
		return
	}
	delete(g.jobs, job)
	if m := g.cfg.Metrics; m != nil {
		m.GuardSignal.DeletePartialMatch(prometheus.Labels{"backfill": job})
		m.GuardThreshold.DeletePartialMatch(prometheus.Labels{"backfill": job})
		m.AutoRate.DeleteLabelValues(job)
	}
}

func (g *Leader) releaseAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for job := range g.jobs {
		if err := g.cfg.Ledger.ReleaseLeader(ctx, job, g.cfg.ID); err != nil {
			g.log.Warn("could not release guard lease", slog.String("job", job), slog.Any("err", err))
		}
	}
	g.jobs = map[string]*leading{}
}

func (g *Leader) tick(ctx context.Context) {
	jobs, err := g.cfg.Ledger.Jobs(ctx)
	if err != nil {
		if ctx.Err() == nil {
			g.log.Warn("guard cannot list jobs", slog.Any("err", err))
		}
		return
	}
	for _, job := range jobs {
		if ctx.Err() != nil {
			return
		}
		err := g.check(ctx, job)
		switch {
		case err == nil:
			delete(g.lastErr, job)
		case ctx.Err() == nil && g.lastErr[job] != err.Error():
			g.lastErr[job] = err.Error()
			g.log.Warn("guard check failed (logged again only when the error changes)", slog.String("job", job), slog.Any("err", err))
		}
	}
}

// check samples job's signals and publishes a decision when the job's check
// is due and this worker holds, or takes, its lease.
func (g *Leader) check(ctx context.Context, job string) error {
	now, err := g.cfg.Now(ctx)
	if err != nil {
		return err
	}
	spec, prog, err := g.due(ctx, job, now)
	if err != nil || spec == nil {
		return err
	}
	cur, err := g.acquire(ctx, job, spec, prog, now)
	if err != nil || cur == nil {
		return err
	}
	cur.last = now
	d := g.decide(ctx, job, cur, prog, now)
	if err := g.publish(ctx, job, d); err != nil || g.jobs[job] != cur {
		return err // or the lease was lost: the successor keeps the history
	}
	if err := g.recordPoint(ctx, job, cur, d, now); err != nil {
		return err
	}
	return g.record(ctx, job, cur, d)
}

// recordPoint adds the check to the job's series, at most every
// SeriesEvery, and always when the guard's state changed so a pause is
// charted where it began.
func (g *Leader) recordPoint(ctx context.Context, job string, cur *leading, d *guard.Decision, now time.Time) error {
	if now.Sub(cur.pointAt) < SeriesEvery && d.State == cur.published.State {
		return nil
	}
	cur.pointAt = now
	b, err := json.Marshal(guard.PointOf(d))
	if err != nil {
		return fmt.Errorf("encode series point: %w", err)
	}
	return g.cfg.Ledger.RecordSeries(ctx, job, b)
}

// record keeps a change of the guard's state, rate factor or auto rate in
// the job's history, and counts it.
func (g *Leader) record(ctx context.Context, job string, cur *leading, d *guard.Decision) error {
	c, ok := guard.ChangeFrom(cur.published, d)
	if !ok {
		return nil
	}
	cur.published = guard.Published{State: d.State, Factor: d.Factor, Rate: c.Rate}
	if m := g.cfg.Metrics; m != nil {
		m.GuardChanges.WithLabelValues(job, string(d.State)).Inc()
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode guard history entry: %w", err)
	}
	return g.cfg.Ledger.RecordHistory(ctx, job, b)
}

// due returns the job's spec and progress when a check of job is due; a nil
// spec means nothing to do (not due yet, gone, finished or unwatched). It
// forgets, and for a finished job releases, a job no longer to lead.
func (g *Leader) due(ctx context.Context, job string, now time.Time) (*jobspec.Spec, ledger.Progress, error) {
	l := g.cfg.Ledger
	cur := g.jobs[job]
	if cur != nil && now.Sub(cur.last) < cur.spec.Guard.CheckEvery.D() {
		return nil, ledger.Progress{}, nil
	}
	if until, ok := g.standby[job]; ok && cur == nil && now.Before(until) {
		return nil, ledger.Progress{}, nil
	}
	prog, err := l.Progress(ctx, job)
	if errors.Is(err, ledger.ErrNotFound) {
		g.drop(job)
		return nil, prog, nil
	}
	if err != nil {
		return nil, prog, err
	}
	if prog.Finished {
		if cur != nil {
			g.drop(job)
			return nil, prog, l.ReleaseLeader(ctx, job, g.cfg.ID)
		}
		return nil, prog, nil
	}
	spec, err := g.loadSpec(ctx, job)
	if err != nil || !guard.Watched(spec) {
		return nil, prog, err
	}
	return spec, prog, nil
}

// acquire takes or renews job's lease and returns what this worker leads
// for it, set up afresh for a new lease or a changed spec; nil when another
// worker holds the lease.
func (g *Leader) acquire(ctx context.Context, job string, spec *jobspec.Spec, prog ledger.Progress, now time.Time) (*leading, error) {
	cur := g.jobs[job]
	every := spec.Guard.CheckEvery.D()
	if f, ok := g.cannot[job]; ok && cur == nil && now.Sub(f.at) < every {
		// Step back for one interval: a healthy worker takes the lease in
		// the meantime. The same error keeps the log quiet.
		return nil, f.err
	}
	ok, err := g.cfg.Ledger.AcquireLeader(ctx, job, g.cfg.ID, guard.LeaseTTL(every))
	if err != nil {
		return nil, err
	}
	if !ok {
		g.drop(job)
		g.standby[job] = now.Add(every / 2)
		return nil, nil
	}
	delete(g.standby, job)
	if cur == nil || !sameSpec(cur.spec, spec) {
		next, err := g.lead(ctx, job, spec, prog, now)
		if err != nil {
			return nil, g.cannotLead(ctx, job, spec, now, err)
		}
		delete(g.cannot, job)
		cur = next
		g.jobs[job] = cur
	}
	return cur, nil
}

// publish stores d, fenced by the lease: a leader that lost the lease
// between renewing it and publishing drops the job instead of overwriting
// its successor.
func (g *Leader) publish(ctx context.Context, job string, d *guard.Decision) error {
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode guard decision: %w", err)
	}
	put, err := g.cfg.Ledger.PutDecision(ctx, job, g.cfg.ID, b)
	if err != nil {
		return err
	}
	if !put {
		g.drop(job)
	}
	return nil
}

// cannotLead handles a job whose lease this worker holds but whose guard it
// cannot run (a prometheus rule without its URL env here, a replica DSN env
// missing, a pool that will not open). Keeping the lease would renew it every
// check and fail again, so healthy workers never took over and the fleet
// ended up paused with only a vague "no fresh decision". Instead, as the
// holder, it publishes a pause that says why, carrying the previous rule
// memory so the next leader resumes it, and gives the lease up. The cause
// is safe to publish: pool and URL errors never echo a DSN or a password.
func (g *Leader) cannotLead(ctx context.Context, job string, spec *jobspec.Spec, now time.Time, cause error) error {
	l := g.cfg.Ledger
	g.drop(job)
	if ctx.Err() != nil {
		// Shutting down, not a broken worker: Run gives the lease up.
		return cause
	}
	err := fmt.Errorf("guard of %s cannot run on this worker (paused the job and gave up the lease): %w", job, cause)
	g.cannot[job] = leadFailure{at: now, err: err}
	d := &guard.Decision{
		State: guard.StatePause, GuardFactor: 1, Leader: g.cfg.ID, At: now,
		Expires: now.Add(guard.DecisionTTL(spec.Guard.CheckEvery.D())),
		Reasons: []string{fmt.Sprintf("cannot watch the job on worker %s, another worker may take over: %v", g.cfg.ID, cause)},
	}
	if raw, rerr := l.Decision(ctx, job); rerr == nil && raw != nil {
		if prev, perr := guard.ParseDecision(raw); perr == nil {
			d.Rules, d.GuardFactor, d.Base, d.Factor, d.Auto = prev.Rules, prev.GuardFactor, prev.Base, prev.Factor, prev.Auto
		}
	}
	b, merr := json.Marshal(d)
	if merr != nil {
		return errors.Join(err, fmt.Errorf("encode guard decision: %w", merr))
	}
	var errs []error
	if _, perr := l.PutDecision(ctx, job, g.cfg.ID, b); perr != nil {
		errs = append(errs, perr)
	}
	if rerr := l.ReleaseLeader(ctx, job, g.cfg.ID); rerr != nil {
		errs = append(errs, rerr)
	}
	return errors.Join(append([]error{err}, errs...)...)
}

// lead sets up sampling for a job this worker just started leading,
// resuming the previous leader's rule memory.
func (g *Leader) lead(ctx context.Context, job string, spec *jobspec.Spec, prog ledger.Progress, now time.Time) (*leading, error) {
	l := g.cfg.Ledger
	pool, err := g.cfg.Pools(ctx, spec.DatabaseEnv)
	if err != nil {
		return nil, err
	}
	sampler, err := probe.NewSampler(probe.SamplerConfig{
		Spec: spec, Primary: pool, Getenv: g.cfg.Getenv, HTTPClient: g.cfg.HTTPClient,
		Replica: func(ctx context.Context, env string) (*pgxpool.Pool, error) { return g.cfg.Pools(ctx, env) },
		CommitP95: func(ctx context.Context) (float64, error) {
			ts, err := l.CommitTimes(ctx, job)
			if err != nil {
				return 0, err
			}
			// No commit within the window reads 0, not "no signal": the
			// signal is the pressure our own batches put on the database,
			// and a fleet that commits nothing (paused, or between ranges)
			// puts none. Failing closed here would keep a pause on this
			// signal from ever clearing.
			return p95(ts).Seconds(), nil
		},
	})
	if err != nil {
		return nil, err
	}
	cur := &leading{spec: spec, sampler: sampler, factor: 1, state: guard.StateRun, published: guard.Published{State: guard.StateRun, Factor: 1}}
	var prior map[string]*guard.RuleState
	if raw, err := l.Decision(ctx, job); err == nil && raw != nil {
		if d, err := guard.ParseDecision(raw); err == nil {
			prior, cur.factor, cur.base, cur.state = d.Rules, d.GuardFactor, d.Base, d.State
			cur.published = guard.Published{State: d.State, Factor: d.Factor}
			if d.Auto != nil && spec.AutoRate {
				cur.auto, cur.published.Rate = *d.Auto, d.Auto.Rate
			}
		}
	}
	if cur.factor <= 0 || cur.factor > 1 {
		cur.factor = 1
	}
	cur.eval = guard.NewEvaluator(spec.Guard.Rules, spec.Guard.CheckEvery.D(), g.cfg.Hold, prior)
	if cur.baseline, err = probe.MeasureBaselines(ctx, l, sampler, spec, prog.Created); err != nil {
		// Rules without a baseline report it as "no fresh signal".
		g.log.Warn("guard baseline incomplete", slog.String("job", job), slog.Any("err", err))
	}
	cur.rows, cur.rowsAt = prog.Rows, now
	g.log.Info("guard leader", slog.String("job", job), slog.String("worker", g.cfg.ID), slog.Int("rules", len(spec.Guard.Rules)))
	return cur, nil
}

func (g *Leader) loadSpec(ctx context.Context, job string) (*jobspec.Spec, error) {
	raw, err := g.cfg.Ledger.Spec(ctx, job)
	if err != nil {
		return nil, err
	}
	spec, err := jobspec.FromJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", job, err)
	}
	return spec, nil
}

func sameSpec(a, b *jobspec.Spec) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}
