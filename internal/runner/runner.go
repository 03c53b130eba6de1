// Package runner handles range tasks for asynq. For each task it loads the
// job's spec and walks the range from its checkpoint to its end with a
// walker (walker.go), whose loop reads as its steps: gate (pause switches,
// drain, guard; gate.go) → read the next pending keys → per batch: cut,
// throttle (fleet rate and slots; throttle.go), write and commit,
// checkpoint, adapt the size, pace. Failed reads and writes share one retry
// policy (retry.go).
//
// It is the only place that decides what an error means to the queue:
// permanent errors archive the task (SkipRetry), a pause or a drain hands the
// range back without counting a failure (Yield), anything else is retried.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/batch"
	"github.com/ebbhq/ebb/internal/chunks"
	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/metrics"
	"github.com/ebbhq/ebb/internal/pause"
	"github.com/ebbhq/ebb/internal/rangetask"
	"github.com/ebbhq/ebb/internal/signing"
)

// WorkerID names this process: host and pid, which is what an operator
// finds in ps and kubectl.
func WorkerID() string {
	host, err := os.Hostname()
	if err != nil {
		host = "worker"
	}
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}

// PoolFunc returns the pool for the DSN held in the environment variable
// env. The runner never closes it.
type PoolFunc func(ctx context.Context, env string) (*pgxpool.Pool, error)

// Config wires a Runner.
type Config struct {
	// Ledger is every Redis key the runner touches, the fleet's rate
	// limiter included.
	Ledger *ledger.Ledger
	// ID names this worker in batch slots and the guard lease; default
	// host:pid.
	ID string
	// Enqueue puts a range task on queue; the runner uses it to requeue
	// the halves of a split range. Nil makes such ranges fail instead.
	Enqueue rangetask.EnqueueFunc
	// Pools supplies database pools by the job's database_env.
	Pools PoolFunc
	// Signing verifies every range task and job spec before anything of
	// it runs (package signing); nil runs unsigned ones.
	Signing signing.Key
	// Logger defaults to a discarding logger.
	Logger *slog.Logger
	// Metrics may be nil.
	Metrics *metrics.Metrics
	// Draining reports that the process is shutting down: the runner then
	// finishes the batch in flight, checkpoints and hands the range back.
	// Nil means never.
	Draining func() bool
	// PauseRecheck is how soon a range paused mid-way is offered again;
	// default 2s. A range that was still paused when dequeued comes back
	// after five times that.
	PauseRecheck time.Duration
	// SlotLease is the lease of a max_workers slot, renewed while its batch
	// runs: a dead worker's slot frees within it. Default 5s.
	SlotLease time.Duration
	// AliveTTL is how long "running" shows after the last commit; default 15s.
	AliveTTL time.Duration
	// ControlsMaxAge is how long one read of a job's pause keys, guard
	// decision and overrides serves this worker's batches; default
	// DefaultControlsMaxAge. A negative value reads them before every batch.
	ControlsMaxAge time.Duration
	// ShutdownTimeout is the asynq server's; a job whose worst batch takes
	// longer is warned about, since a stop could then cut its batch. Zero
	// skips the check.
	ShutdownTimeout time.Duration
}

// Runner is an asynq.Handler for range tasks.
type Runner struct {
	cfg      Config
	log      *slog.Logger
	pauser   *pause.Pauser
	follower *guard.Follower
	controls *controlsCache
	seq      atomic.Int64
	// sizers holds one batch sizer per job (*chunks.Sizer), shared by this
	// worker's goroutines and kept across ranges: each range would
	// otherwise start at the job's initial size again, forgetting a ÷10
	// cut the last range needed.
	sizers sync.Map
	// paused remembers, per job, the last pause reason this worker saw, so
	// pause and resume are logged once per transition, not per batch.
	paused sync.Map
	// rateTurns holds, per job, a one-slot channel: the turn at the fleet's
	// rate limit that this worker's goroutines take one at a time.
	rateTurns sync.Map
	// fences remembers the fence tables this worker made sure exist.
	fences sync.Map
	// touched holds, per job, when this worker last renewed its alive
	// mark (time.Time).
	touched sync.Map
	// outages holds, per job, the database outage this worker is waiting
	// out (*outage); absent while the database answers.
	outages sync.Map
	// shared remembers which queues other unfinished jobs use (hold.go).
	shared queueShared
}

// New returns a Runner.
func New(cfg Config) (*Runner, error) {
	cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Runner{
		cfg: cfg, log: cfg.Logger,
		pauser:   pause.NewPauser(cfg.Ledger, cfg.Logger),
		follower: guard.NewFollower(),
		controls: newControlsCache(cfg.ControlsMaxAge),
	}, nil
}

func (c *Config) withDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Draining == nil {
		c.Draining = func() bool { return false }
	}
	if c.PauseRecheck <= 0 {
		c.PauseRecheck = 2 * time.Second
	}
	if c.SlotLease <= 0 {
		c.SlotLease = 5 * time.Second
	}
	if c.AliveTTL <= 0 {
		c.AliveTTL = 15 * time.Second
	}
	if c.ControlsMaxAge == 0 {
		c.ControlsMaxAge = DefaultControlsMaxAge
	}
	if c.ID == "" {
		c.ID = WorkerID()
	}
}

func (c *Config) validate() error {
	if c.Ledger == nil {
		return errors.New("runner: Config.Ledger is required")
	}
	if c.Pools == nil {
		return errors.New("runner: Config.Pools is required")
	}
	return nil
}

// ProcessTask runs one range task. It implements asynq.Handler.
func (r *Runner) ProcessTask(ctx context.Context, t *asynq.Task) error {
	p, err := rangetask.Decode(t.Payload())
	if err != nil {
		r.log.ErrorContext(ctx, "malformed range task archived", slog.String("payload", truncate(t.Payload(), 200)), slog.Any("err", err))
		return fmt.Errorf("malformed range task payload (archived; enqueue ranges only with enqueuer start): %v: %w", err, asynq.SkipRetry)
	}
	if err := p.Verify(r.cfg.Signing); err != nil {
		return r.refuse(ctx, p, err)
	}
	queue, _ := asynq.GetQueueName(ctx)
	spec, err := r.loadSpec(ctx, p)
	if err != nil {
		return err
	}
	err = r.newWalker(queue, spec, p).Run(ctx)
	return r.outcome(ctx, p, err)
}

// IsFailure tells asynq which handler errors count as failures: a yield
// (pause, drain, fenced out) does not, so it neither burns a retry nor
// archives a range, and neither does an expired lease. A lease expires
// when a worker dies or stalls: that says nothing about the range, which
// resumes from its checkpoint, and counted as failures enough kills
// during one range made asynq archive it without ebb's handler ever
// seeing the range fail.
func IsFailure(err error) bool {
	return !errors.Is(err, ErrYield) && !errors.Is(err, asynq.ErrLeaseExpired)
}

// RetryDelay is asynq's RetryDelayFunc: a yield comes back after its own
// delay, anything else after asynq's default backoff.
func RetryDelay(n int, err error, t *asynq.Task) time.Duration {
	var y *YieldError
	if errors.As(err, &y) {
		return y.After
	}
	if errors.Is(err, asynq.ErrLeaseExpired) {
		// The worker died or lost Redis; the range resumes from its
		// checkpoint, so there is nothing to wait out.
		return time.Second
	}
	return asynq.DefaultRetryDelayFunc(n, err, t)
}

func (r *Runner) loadSpec(ctx context.Context, p rangetask.Payload) (*jobspec.Spec, error) {
	job := p.Job
	raw, sig, err := r.cfg.Ledger.SignedSpec(ctx, job)
	if errors.Is(err, ledger.ErrNotFound) {
		r.log.ErrorContext(ctx, "range task of unknown job archived", slog.String("job", job))
		return nil, fmt.Errorf("job %s has no spec in Redis (archived; run enqueuer start -job FILE to store it and re-enqueue): %w", job, asynq.SkipRetry)
	}
	if err != nil {
		return nil, err
	}
	if err := r.cfg.Signing.Verify(signing.KindSpec, raw, sig); err != nil {
		return nil, r.refuse(ctx, p, fmt.Errorf("job %s: %w", job, err))
	}
	spec, err := jobspec.FromJSON(raw)
	if err != nil {
		r.log.ErrorContext(ctx, "range task with invalid stored spec archived", slog.String("job", job), slog.Any("err", err))
		return nil, fmt.Errorf("job %s: %w (archived; run enqueuer start -job FILE again): %w", job, err, asynq.SkipRetry)
	}
	if spec.Name != job {
		return nil, fmt.Errorf("job %s: stored spec names job %q (archived; run enqueuer start -job FILE again): %w", job, spec.Name, asynq.SkipRetry)
	}
	return spec, nil
}

// refuse archives a range whose task or spec fails its signature check,
// before anything of it runs, and records why for status.
func (r *Runner) refuse(ctx context.Context, p rangetask.Payload, cause error) error {
	r.log.ErrorContext(ctx, "range refused: signature mismatch; nothing of it ran", slog.String("job", p.Job), slog.Int64("range", p.Range), slog.Any("err", cause))
	r.fail(ctx, p, fmt.Errorf("refused, nothing ran: %w; run enqueuer start -job FILE again with the fleet's %s", cause, signing.EnvVar))
	return fmt.Errorf("%w (archived): %w", cause, asynq.SkipRetry)
}

// sizer returns this worker's sizer for the job, a new one when the job's
// batch settings changed (enqueuer start with an edited file).
func (r *Runner) sizer(spec *jobspec.Spec) *chunks.Sizer {
	cfg := chunks.SizerConfig{Initial: spec.Batch.Size, Min: spec.Batch.Min, Max: spec.Batch.Max, Target: spec.Batch.Target.D()}
	if v, ok := r.sizers.Load(spec.Name); ok {
		if s := v.(*chunks.Sizer); s.Config() == cfg {
			return s
		}
	}
	s := chunks.NewSizer(cfg)
	r.sizers.Store(spec.Name, s)
	return s
}

// outcome maps a walk's error onto asynq and the ledger.
func (r *Runner) outcome(ctx context.Context, p rangetask.Payload, err error) error {
	attrs := []any{slog.String("job", p.Job), slog.Int64("range", p.Range)}
	var y *YieldError
	var gaveUp *GaveUpError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &y):
		level := slog.LevelInfo
		if y.Idle {
			// A paused range bounces through the queue until resume; one
			// line per bounce would bury the lines that matter.
			level = slog.LevelDebug
		}
		r.log.Log(ctx, level, "range handed back", append(attrs, slog.String("reason", y.Reason))...)
		return err
	case fenced(err):
		// Another run of this range claimed it while this one stalled
		// (asynq's lease ran out): that run owns the range now, and
		// nothing of this one's was written after the claim.
		r.log.WarnContext(ctx, "range fenced out: a newer worker took it over; this worker's stale write was refused and it stops working on the range",
			append(attrs, slog.Any("err", err))...)
		r.count(p.Job, metrics.OutcomeFenced)
		// Handed back, not finished: if asynq still counts this run's
		// lease as valid, the task comes back later, and finds the range
		// done, or claims it again from the newer run's cursor. Returning
		// nil would mark the task completed while its range may not be.
		return &YieldError{Reason: "fenced out by a newer worker", After: r.cfg.PauseRecheck}
	case batch.IsConnection(err):
		return r.outage(ctx, p, err)
	case batch.IsUnwritable(err):
		return r.pauseUnwritable(ctx, p, err)
	case batch.IsPermanent(err), errors.As(err, &gaveUp):
		r.fail(ctx, p, err)
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	case errors.Is(err, asynq.SkipRetry):
		return err
	case ctx.Err() != nil:
		// Lease lost or shutdown deadline: asynq re-queues the range; its
		// checkpoint is already in the ledger.
		r.log.WarnContext(ctx, "range stopped by context", append(attrs, slog.Any("err", err))...)
		return err
	}
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	if retried >= maxRetry {
		r.fail(ctx, p, err)
	} else {
		r.log.WarnContext(ctx, "range will be retried", append(attrs, slog.Any("err", err))...)
	}
	return err
}

// ensureFence creates the job's fence table once per table and worker.
func (r *Runner) ensureFence(ctx context.Context, exec *batch.Executor, dbEnv, table string) error {
	key := dbEnv + " " + table
	if _, ok := r.fences.Load(key); ok {
		return nil
	}
	if err := exec.EnsureFenceTable(ctx, table); err != nil {
		return err
	}
	r.fences.Store(key, true)
	return nil
}

// aliveTTL is the alive mark a checkpoint renews: the job's AliveTTL when
// this worker last renewed it a quarter of that ago or more, else 0 (leave
// it): a SET on every batch was a tenth of a batch's Redis commands.
func (r *Runner) aliveTTL(job string, now time.Time) time.Duration {
	if v, ok := r.touched.Load(job); ok && now.Sub(v.(time.Time)) < r.cfg.AliveTTL/4 {
		return 0
	}
	r.touched.Store(job, now)
	return r.cfg.AliveTTL
}

// fenced reports whether err is a refusal of a stale fencing token, by
// the database (a batch) or the ledger (a checkpoint, done mark, split).
func fenced(err error) bool {
	return errors.Is(err, batch.ErrFenced) || errors.Is(err, ledger.ErrFenced)
}

func (r *Runner) fail(ctx context.Context, p rangetask.Payload, cause error) {
	r.log.ErrorContext(ctx, "range failed", slog.String("job", p.Job), slog.Int64("range", p.Range), slog.Any("err", cause))
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.cfg.Ledger.MarkFailed(fctx, p.Job, p.Range, cause.Error()); err != nil {
		r.log.ErrorContext(ctx, "could not record range failure", slog.String("job", p.Job), slog.Int64("range", p.Range), slog.Any("err", err))
	}
}

func (r *Runner) count(job, outcome string) {
	if r.cfg.Metrics != nil {
		r.cfg.Metrics.Batches.WithLabelValues(job, outcome).Inc()
	}
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
