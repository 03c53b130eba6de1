// Package runner walks one range task: gate → read → write → commit →
// checkpoint → sleep, until the range is exhausted, and maps the outcome onto
// asynq. It is the only place that decides what an error means to the queue:
// permanent errors archive the task (SkipRetry), a pause or a drain hands the
// range back without counting a failure (Yield), anything else is retried.
package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/batch"
	"github.com/ebbhq/ebb/internal/chunks"
	"github.com/ebbhq/ebb/internal/clock"
	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/metrics"
)

// TaskType is the asynq type of a range task.
const TaskType = "ebb:range"

// Payload is the body of a range task. The job's spec is not in it: workers
// load the spec from the ledger, so a task cannot carry its own SQL.
type Payload struct {
	Job   string `json:"job"`
	Range int64  `json:"range"`
	Lo    int64  `json:"lo"`
	Hi    int64  `json:"hi"`
}

// NewTask builds the asynq task of a range. Its TaskID is deterministic, so
// enqueuing the same range twice is rejected by asynq as a conflict. TaskIDs
// never contain { or }, which would break asynq's hash tags on a cluster.
func NewTask(p Payload) (*asynq.Task, string, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, "", fmt.Errorf("encode task of %s range %d: %w", p.Job, p.Range, err)
	}
	return asynq.NewTask(TaskType, b), TaskID(p.Job, p.Range), nil
}

// Task options. Retention keeps a completed task's ID for a day so a second
// start within it sees a conflict rather than a fresh task; the ledger's done
// marks cover the time after that. The timeout only bounds one run of a
// range, which resumes from its checkpoint.
const (
	taskRetention = 24 * time.Hour
	taskTimeout   = 6 * time.Hour
	taskMaxRetry  = 10
)

// TaskOptions are the asynq options of a range task.
func TaskOptions(queue, id string) []asynq.Option {
	return []asynq.Option{asynq.Queue(queue), asynq.TaskID(id), asynq.Retention(taskRetention),
		asynq.MaxRetry(taskMaxRetry), asynq.Timeout(taskTimeout)}
}

// Enqueuer returns a Config.Enqueue that puts range tasks on client. A
// range already queued (TaskID conflict) counts as enqueued.
func Enqueuer(client *asynq.Client) func(ctx context.Context, queue string, p Payload) error {
	return func(ctx context.Context, queue string, p Payload) error {
		task, id, err := NewTask(p)
		if err != nil {
			return err
		}
		_, err = client.EnqueueContext(ctx, task, TaskOptions(queue, id)...)
		if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			return fmt.Errorf("enqueue %s range %d: %w", p.Job, p.Range, err)
		}
		return nil
	}
}

// WorkerID names this process: host and pid, which is what an operator
// finds in ps and kubectl.
func WorkerID() string {
	host, err := os.Hostname()
	if err != nil {
		host = "worker"
	}
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}

// TaskID is the deterministic asynq TaskID of a range.
func TaskID(job string, rangeID int64) string {
	return fmt.Sprintf("%s:r%d", job, rangeID)
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
	Enqueue func(ctx context.Context, queue string, p Payload) error
	// Pools supplies database pools by the job's database_env.
	Pools PoolFunc
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
	// ShutdownTimeout is the asynq server's; a job whose worst batch takes
	// longer is warned about, since a stop could then cut its batch. Zero
	// skips the check.
	ShutdownTimeout time.Duration
}

// Runner is an asynq.Handler for range tasks.
type Runner struct {
	cfg      Config
	log      *slog.Logger
	pauser   *guard.Pauser
	follower *guard.Follower
	seq      atomic.Int64
	// sizers holds one batch sizer per job (*chunks.Sizer), shared by this
	// worker's goroutines and kept across ranges: each range would
	// otherwise start at the job's initial size again, forgetting a ÷10
	// cut the last range needed.
	sizers sync.Map
	// paused remembers, per job, the last pause reason this worker saw, so
	// pause and resume are logged once per transition, not per batch.
	paused sync.Map
}

// New returns a Runner.
func New(cfg Config) (*Runner, error) {
	cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Runner{
		cfg: cfg, log: cfg.Logger,
		pauser:   guard.NewPauser(cfg.Ledger, cfg.Logger),
		follower: guard.NewFollower(),
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
	var p Payload
	dec := json.NewDecoder(bytesReader(t.Payload()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || p.Job == "" || p.Lo > p.Hi {
		if err == nil {
			err = errors.New("missing job or inverted bounds")
		}
		r.log.ErrorContext(ctx, "malformed range task archived", slog.String("payload", truncate(t.Payload(), 200)), slog.Any("err", err))
		return fmt.Errorf("malformed range task payload (archived; enqueue ranges only with enqueuer start): %v: %w", err, asynq.SkipRetry)
	}
	queue, _ := asynq.GetQueueName(ctx)
	spec, err := r.loadSpec(ctx, p.Job)
	if err != nil {
		return err
	}
	err = r.walk(ctx, queue, spec, p)
	return r.outcome(ctx, p, err)
}

// IsFailure tells asynq which handler errors count as failures: a yield
// (pause, drain) does not, so it neither burns a retry nor archives a range.
func IsFailure(err error) bool { return !errors.Is(err, ErrYield) }

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

func (r *Runner) loadSpec(ctx context.Context, job string) (*jobspec.Spec, error) {
	raw, err := r.cfg.Ledger.Spec(ctx, job)
	if errors.Is(err, ledger.ErrNotFound) {
		r.log.ErrorContext(ctx, "range task of unknown job archived", slog.String("job", job))
		return nil, fmt.Errorf("job %s has no spec in Redis (archived; run enqueuer start -job FILE to store it and re-enqueue): %w", job, asynq.SkipRetry)
	}
	if err != nil {
		return nil, err
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

// walk processes the range from its checkpoint to its end.
func (r *Runner) walk(ctx context.Context, queue string, spec *jobspec.Spec, p Payload) error {
	l := r.cfg.Ledger
	done, err := l.IsDone(ctx, p.Job, p.Range)
	if err != nil {
		return err
	}
	if done {
		return nil
	}
	pos := p.Lo
	cp, ok, err := l.Checkpoint(ctx, p.Job, p.Range)
	if err != nil {
		return err
	}
	if ok {
		next, more := chunks.Next(cp)
		if !more || next > p.Hi {
			return l.MarkDone(ctx, p.Job, p.Range)
		}
		pos = max(next, p.Lo)
	}
	pool, err := r.cfg.Pools(ctx, spec.DatabaseEnv)
	if err != nil {
		return fmt.Errorf("job %s: %w", p.Job, err)
	}
	exec := batch.NewExecutor(pool, spec)
	attrs := []any{slog.String("job", p.Job), slog.Int64("range", p.Range), slog.Int64("lo", p.Lo), slog.Int64("hi", p.Hi)}
	r.log.InfoContext(ctx, "range start", append(attrs, slog.Int64("from", pos))...)
	if worst := spec.Timeouts.Lock.D() + spec.Timeouts.Statement.D() + spec.Sleep.D(); r.cfg.ShutdownTimeout > 0 && worst >= r.cfg.ShutdownTimeout {
		r.log.WarnContext(ctx, "shutdown timeout shorter than the job's worst batch",
			append(attrs, slog.Duration("worst_batch", worst), slog.Duration("shutdown_timeout", r.cfg.ShutdownTimeout),
				slog.String("hint", "raise the worker's -shutdown-timeout above timeouts.lock + timeouts.statement + sleep"))...)
	}
	if err := l.Touch(ctx, p.Job, r.cfg.AliveTTL); err != nil {
		return err
	}

	sizer := r.sizer(spec)
	slot := fmt.Sprintf("%s:%d", r.cfg.ID, r.seq.Add(1))
	recheck := func() (guard.Limits, error) { return r.limits(ctx, queue, spec, p) }
	bo := newBackoff()
	var rows, batches int64
	attempts := 0
	start := time.Now()
	for {
		lim, err := recheck()
		if err != nil {
			return idle(err, batches == 0, r.cfg.PauseRecheck)
		}
		var keys []int64
		err = r.retry(ctx, spec, func() error {
			var err error
			keys, err = exec.ReadKeys(ctx, pos, p.Hi, spec.ReadBatch)
			return err
		})
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			break
		}
		fresh := true
		for i := 0; i < len(keys); {
			if !fresh {
				if lim, err = recheck(); err != nil {
					return err
				}
			}
			fresh = false
			size := sizer.CapAndSize(batchCap(lim))
			j := min(i+size, len(keys))
			lo, hi := keys[i], keys[j-1]
			release, err := r.throttle(ctx, spec, slot, j-i, lim, recheck)
			if errors.Is(err, errRecut) {
				continue
			}
			if err != nil {
				return err
			}
			began := time.Now()
			n, err := exec.Write(ctx, lo, hi)
			took := time.Since(began)
			release()
			if err != nil {
				if !batch.IsTransient(err) {
					r.count(p.Job, "failed")
					return err
				}
				attempts++
				contended := batch.IsContended(err)
				if contended {
					sizer.Observe(size, took, chunks.Contended, false)
				}
				if attempts >= spec.Retries {
					r.count(p.Job, "failed")
					if contended {
						return r.split(ctx, queue, p, lo, attempts, err)
					}
					return &GaveUpError{Attempts: attempts, Err: err}
				}
				r.log.WarnContext(ctx, "transient error, retrying batch", append(attrs, slog.Int("attempt", attempts),
					slog.Int("next_size", sizer.Size()), slog.Any("err", err))...)
				r.count(p.Job, "retried")
				if err := l.Retried(ctx, p.Job); err != nil {
					return err
				}
				if err := clock.Sleep(ctx, bo.NextBackOff()); err != nil {
					return err
				}
				continue
			}
			attempts = 0
			bo.Reset()
			if err := r.committed(ctx, p, hi, n, took, j-i, spec.DryRun); err != nil {
				return err
			}
			sizer.Observe(size, took, chunks.Committed, lim.Green)
			rows += n
			batches++
			i = j
			if err := clock.Sleep(ctx, lim.Sleep); err != nil {
				return err
			}
		}
		next, more := chunks.Next(keys[len(keys)-1])
		if !more || next > p.Hi {
			break
		}
		pos = next
	}
	if err := l.MarkDone(ctx, p.Job, p.Range); err != nil {
		return err
	}
	r.log.InfoContext(ctx, "range done", append(attrs, slog.Int64("rows", rows), slog.Duration("elapsed", time.Since(start)))...)
	return nil
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

// batchCap is the ceiling of the next batch: the operator's batch_max and
// a second's worth of the fleet's rate. It goes to the sizer as its cap,
// not on top of its size, so the sizer's feedback stays about batches cut
// at the size it chose (it ignores any other).
func batchCap(lim guard.Limits) int {
	c := lim.BatchMax
	if rc := rateCap(lim.Rate); lim.Rate > 0 && (c <= 0 || rc < c) {
		c = rc
	}
	return c
}

// committed records a committed (or, in a dry run, rolled back) batch in
// the ledger and the metrics. The checkpoint is written only after COMMIT
// returned.
func (r *Runner) committed(ctx context.Context, p Payload, hi, n int64, took time.Duration, keys int, dryRun bool) error {
	// The rows are committed: record that even if ctx was cancelled a moment
	// ago, or the range would look behind its real position. Bounded so a
	// Redis outage cannot hang the worker.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.cfg.Ledger.Commit(cctx, p.Job, p.Range, hi, n, took, r.cfg.AliveTTL); err != nil {
		// Redoing from the older checkpoint is safe: the pending predicate
		// turns the committed rows into a no-op.
		return err
	}
	if m := r.cfg.Metrics; m != nil {
		// A dry run's batches rolled back: a dashboard must not read
		// them as rows changed.
		if dryRun {
			m.Batches.WithLabelValues(p.Job, "rolled_back").Inc()
		} else {
			m.Rows.WithLabelValues(p.Job).Add(float64(n))
			m.Batches.WithLabelValues(p.Job, "committed").Inc()
		}
		m.BatchDuration.WithLabelValues(p.Job).Observe(took.Seconds())
		m.BatchSize.WithLabelValues(p.Job).Set(float64(keys))
	}
	return nil
}

// split hands what is left of a range that kept timing out at one spot to
// two new ranges, so the rest of it is not held hostage by one hot row
// (GitLab's batched migrations do the same). A single key cannot be split:
// it fails like any batch that gave up.
func (r *Runner) split(ctx context.Context, queue string, p Payload, from int64, attempts int, cause error) error {
	gaveUp := &GaveUpError{Attempts: attempts, Err: cause}
	if from >= p.Hi || r.cfg.Enqueue == nil {
		return gaveUp
	}
	mid := from + int64((uint64(p.Hi)-uint64(from))/2)
	halves := [2][2]int64{{from, mid}, {mid + 1, p.Hi}}
	ids, err := r.cfg.Ledger.Split(ctx, p.Job, p.Range, halves)
	if err != nil {
		return err
	}
	for k, id := range ids {
		if err := r.cfg.Enqueue(ctx, queue, Payload{Job: p.Job, Range: id, Lo: halves[k][0], Hi: halves[k][1]}); err != nil {
			return fmt.Errorf("requeue half of split %s range %d: %w", p.Job, p.Range, err)
		}
	}
	if err := r.cfg.Ledger.MarkDone(ctx, p.Job, p.Range); err != nil {
		return err
	}
	r.log.WarnContext(ctx, "range split after repeated timeouts at one spot",
		slog.String("job", p.Job), slog.Int64("range", p.Range), slog.Int64("at", from),
		slog.Any("halves", ids), slog.Int("attempts", attempts), slog.Any("err", cause))
	return nil
}

// idle marks a yield of a range that did no work in this run (it was
// dequeued while the job was paused): it comes back later than one paused
// mid-range, so a long pause does not churn every range through the queue
// every few seconds.
func idle(err error, noWork bool, recheck time.Duration) error {
	var y *YieldError
	if noWork && errors.As(err, &y) {
		y.Idle = true
		y.After = idleRecheckFactor * recheck
	}
	return err
}

// idleRecheckFactor stretches the recheck of ranges that are still paused.
const idleRecheckFactor = 5

// limits returns what the next batch may do, or a yield when the job is
// paused (a pause key, asynq's queue pause, the guard) or the worker drains,
// and the context's error when the lease is gone. It runs between batches
// only, so a pause never cuts a transaction in half.
func (r *Runner) limits(ctx context.Context, queue string, spec *jobspec.Spec, p Payload) (guard.Limits, error) {
	if err := ctx.Err(); err != nil {
		return guard.Limits{}, err
	}
	if r.cfg.Draining() {
		return guard.Limits{}, &YieldError{Reason: "worker shutting down", After: time.Second}
	}
	c, err := r.cfg.Ledger.Controls(ctx, p.Job, queue)
	if err != nil {
		return guard.Limits{}, err
	}
	pause := r.pauser.Judge(ctx, p.Job, queue, c.Pause)
	if !pause.Paused && c.BadOverrides != nil {
		// A typo in a live override must not run the job at a limit
		// nobody asked for, nor burn its ranges' retries: pause until fixed.
		pause.Paused, pause.Reason = true, fmt.Sprintf("bad live override, fix it with enqueuer set: %v", c.BadOverrides)
	}
	if pause.Paused {
		r.gauge(p.Job, 1, -1)
		r.transition(ctx, p.Job, pause.Reason)
		return guard.Limits{}, &YieldError{Reason: pause.Reason, After: r.cfg.PauseRecheck}
	}
	lim, err := r.follow(ctx, spec, p, queue, c)
	if err != nil {
		return guard.Limits{}, err
	}
	state := 0.0
	switch {
	case lim.Stale:
		state = 3
	case lim.Paused:
		state = 2
	case lim.Reason != "":
		state = 1
	}
	r.gauge(p.Job, boolFloat(lim.Paused), state)
	if lim.Paused {
		r.transition(ctx, p.Job, lim.Reason)
		return lim, &YieldError{Reason: lim.Reason, After: r.cfg.PauseRecheck}
	}
	r.transition(ctx, p.Job, "")
	return lim, nil
}

// transition logs when this worker first sees job paused (with the reason)
// or running again.
func (r *Runner) transition(ctx context.Context, job, reason string) {
	prev, _ := r.paused.Swap(job, reason)
	switch was, _ := prev.(string); {
	case reason != "" && was == "":
		r.log.InfoContext(ctx, "job paused", slog.String("job", job), slog.String("reason", reason))
	case reason == "" && was != "":
		r.log.InfoContext(ctx, "job resumed", slog.String("job", job), slog.String("was", was))
	}
}

// follow reads the guard's decision and the overrides. A job the guard has
// not looked at yet waits here for its first decision (a leader publishes
// within a check) rather than bouncing the range through the queue.
func (r *Runner) follow(ctx context.Context, spec *jobspec.Spec, p Payload, queue string, c ledger.Controls) (guard.Limits, error) {
	deadline := time.Now().Add(guard.LeaseTTL(spec.Guard.CheckEvery.D()))
	for {
		lim := r.follower.Limits(spec, c, c.Now)
		if !lim.Waiting || time.Now().After(deadline) || r.cfg.Draining() {
			return lim, nil
		}
		if err := clock.Sleep(ctx, 100*time.Millisecond); err != nil {
			return guard.Limits{}, err
		}
		var err error
		if c, err = r.cfg.Ledger.Controls(ctx, p.Job, queue); err != nil {
			return guard.Limits{}, err
		}
	}
}

func (r *Runner) gauge(job string, paused, state float64) {
	if m := r.cfg.Metrics; m != nil {
		m.Paused.WithLabelValues(job).Set(paused)
		if state >= 0 {
			m.GuardState.WithLabelValues(job).Set(state)
		}
	}
}

// retry runs op until it succeeds, fails permanently, or spec.Retries
// attempts have failed transiently. backoff's jittered exponential schedule
// keeps a fleet of workers from retrying a hot spot in lockstep.
func (r *Runner) retry(ctx context.Context, spec *jobspec.Spec, op func() error) error {
	attempt := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		attempt++
		err := op()
		if err == nil || !batch.IsTransient(err) {
			if err != nil {
				err = backoff.Permanent(err)
			}
			return struct{}{}, err
		}
		r.log.WarnContext(ctx, "transient error, retrying batch", slog.String("job", spec.Name), slog.Int("attempt", attempt), slog.Any("err", err))
		r.count(spec.Name, "retried")
		return struct{}{}, err
	},
		backoff.WithBackOff(newBackoff()),
		backoff.WithMaxTries(uint(spec.Retries)),
		backoff.WithMaxElapsedTime(0),
	)
	if err != nil && batch.IsTransient(err) {
		return &GaveUpError{Attempts: attempt, Err: err}
	}
	return err
}

// outcome maps a walk's error onto asynq and the ledger.
func (r *Runner) outcome(ctx context.Context, p Payload, err error) error {
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

func (r *Runner) fail(ctx context.Context, p Payload, cause error) {
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

// newBackoff is the jittered exponential schedule of retries.
func newBackoff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{
		InitialInterval:     100 * time.Millisecond,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         5 * time.Second,
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
