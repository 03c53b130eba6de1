// Package control is the operator's side of ebb, as asynq's Client and
// Inspector are the producer's side of asynq: plan a job, start it (store the
// spec, slice the key space, enqueue one task per range, idempotently), read
// its status, pause and resume it. cmd/enqueuer only parses flags and prints.
package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/ebbhq/ebb/internal/chunks"
	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/pause"
	"github.com/ebbhq/ebb/internal/preflight"
	"github.com/ebbhq/ebb/internal/runner"
)

// DefaultQueue is the asynq queue ranges go to unless told otherwise.
const DefaultQueue = "ebb"

// Control runs operator commands. The caller owns and closes rdb.
type Control struct {
	ledger    *ledger.Ledger
	client    *asynq.Client
	inspector *asynq.Inspector
	log       *slog.Logger
	getenv    func(string) string
}

// New returns a Control on rdb with the given key prefix ("" = default).
func New(rdb redis.UniversalClient, prefix string, log *slog.Logger) *Control {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Control{
		ledger:    ledger.New(rdb, prefix),
		client:    asynq.NewClientFromRedisClient(rdb),
		inspector: asynq.NewInspectorFromRedisClient(rdb),
		log:       log,
	}
}

// Ledger exposes the ledger the control reads.
func (c *Control) Ledger() *ledger.Ledger { return c.ledger }

// PlanReport is what plan prints: the bounds, the estimate and the statements.
type PlanReport struct {
	Job           string   `json:"job"`
	Table         string   `json:"table"`
	Min           *int64   `json:"min"`
	Max           *int64   `json:"max"`
	From          int64    `json:"from"`
	To            int64    `json:"to"`
	EstimatedRows int64    `json:"estimated_rows"`
	EstimatedTodo int64    `json:"estimated_pending"`
	Ranges        int64    `json:"ranges"`
	ReadSQL       string   `json:"read_sql"`
	WriteSQL      string   `json:"write_sql"`
	ReadPlan      string   `json:"read_plan"`
	WritePlan     string   `json:"write_plan"`
	Notes         []string `json:"notes,omitempty"`
}

// ValidQueue rejects queue names asynq cannot serve safely: { and } would
// break its {queue} hash tags (CROSSSLOT errors on Redis Cluster).
func ValidQueue(q string) error {
	if q == "" {
		return fmt.Errorf("%w: it must not be empty", ErrBadQueue)
	}
	if strings.ContainsAny(q, "{}") {
		return fmt.Errorf("%w %q: { and } break asynq's Redis hash tags; pick another", ErrBadQueue, q)
	}
	return nil
}

// ErrDryRunMismatch refuses to mix a dry run and a real run of one job.
var ErrDryRunMismatch = errors.New("dry run and real run of one job")

// ErrBadQueue is a queue name ebb refuses.
var ErrBadQueue = errors.New("bad queue name")

// ErrEmpty means the job's key range holds no rows: nothing to backfill.
var ErrEmpty = errors.New("the table has no rows in the job's key range; nothing to backfill")

// Plan validates the job against the database without writing anything. A
// preflight refusal is a *preflight.RefusedError.
func Plan(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec) (*PlanReport, error) {
	res, err := preflight.Run(ctx, pool, spec)
	if err != nil {
		return nil, err
	}
	p := &PlanReport{Job: spec.Name, Table: spec.Table, ReadSQL: res.Stmts.Read, WriteSQL: res.Stmts.Write, Notes: res.Notes}
	bounds, err := readBounds(ctx, pool, spec)
	if err != nil {
		return nil, err
	}
	p.Min, p.Max = bounds.min, bounds.max
	if err := pool.QueryRow(ctx, "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass($1)", spec.Table).Scan(&p.EstimatedRows); err != nil {
		return nil, fmt.Errorf("estimate rows of %s: %w", spec.Table, err)
	}
	from, to, err := bounds.resolve(spec)
	if err == nil {
		p.From, p.To = from, to
		if p.Ranges, err = chunks.Count(from, to, spec.TaskSpan); err != nil {
			return nil, err
		}
		if p.EstimatedTodo, err = estimatePending(ctx, pool, spec, from, to); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, ErrEmpty) {
		return nil, err
	}
	lo := p.From
	if p.ReadPlan, err = preflight.Explain(ctx, res, res.Stmts.Read, lo, lo+int64(spec.ReadBatch), spec.ReadBatch); err != nil {
		return nil, fmt.Errorf("explain read: %w", err)
	}
	if p.WritePlan, err = preflight.Explain(ctx, res, res.Stmts.Write, lo, lo+int64(spec.Batch.Max)); err != nil {
		return nil, fmt.Errorf("explain write: %w", err)
	}
	return p, nil
}

// StartResult counts what start did with each range.
type StartResult struct {
	Job           string `json:"job"`
	Queue         string `json:"queue"`
	From          int64  `json:"from"`
	To            int64  `json:"to"`
	Ranges        int64  `json:"ranges"`
	Enqueued      int    `json:"enqueued"`
	AlreadyQueued int    `json:"already_queued"`
	AlreadyDone   int    `json:"already_done"`
	Requeued      int    `json:"requeued"`
	// KeptSlicing is set when the job was started before with another
	// range or task_span: the stored slicing wins so done marks stay valid.
	KeptSlicing bool `json:"kept_slicing,omitempty"`
	// Warnings are problems that do not stop the job, e.g. a baseline
	// that could not be measured yet.
	Warnings []string `json:"warnings,omitempty"`
}

// Start stores the spec and enqueues every range that is neither done nor
// queued. Running it again is safe: it adds no duplicates, re-enqueues
// failed (archived) ranges, and rebuilds the queue after Redis lost it.
func (c *Control) Start(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, queue string) (*StartResult, error) {
	if queue == "" {
		queue = DefaultQueue
	}
	if err := ValidQueue(queue); err != nil {
		return nil, err
	}
	if err := CheckGuard(spec, c.env); err != nil {
		return nil, err
	}
	if _, err := preflight.Run(ctx, pool, spec); err != nil {
		return nil, err
	}
	specJSON, err := spec.JSON()
	if err != nil {
		return nil, fmt.Errorf("encode spec of %s: %w", spec.Name, err)
	}
	meta, err := c.ledger.Meta(ctx, spec.Name)
	fresh := errors.Is(err, ledger.ErrNotFound)
	if err != nil && !fresh {
		return nil, err
	}
	if !fresh && meta.DryRun != spec.DryRun {
		// Done marks of a dry run mean "rolled back", not "written": a
		// real run must never skip ranges on their account.
		was, now := "for real", "as a dry run"
		if meta.DryRun {
			was, now = "as a dry run", "for real"
		}
		return nil, fmt.Errorf("%w: job %s was started %s and cannot be started %s under the same name; run enqueuer cleanup %s first (or pick another name)",
			ErrDryRunMismatch, spec.Name, was, now, spec.Name)
	}
	res := &StartResult{Job: spec.Name, Queue: queue}
	if fresh {
		bounds, err := readBounds(ctx, pool, spec)
		if err != nil {
			return nil, err
		}
		from, to, err := bounds.resolve(spec)
		if err != nil {
			return nil, err
		}
		n, err := chunks.Count(from, to, spec.TaskSpan)
		if err != nil {
			return nil, err
		}
		meta = ledger.Meta{Queue: queue, From: from, To: to, Span: spec.TaskSpan, Ranges: n, Created: time.Now(), DryRun: spec.DryRun}
		if meta.Estimate, err = estimatePending(ctx, pool, spec, from, to); err != nil {
			return nil, err
		}
	}
	stored, err := c.ledger.SaveJob(ctx, spec.Name, specJSON, meta)
	if err != nil {
		return nil, err
	}
	meta = stored
	res.KeptSlicing = !fresh && (meta.Span != spec.TaskSpan ||
		(!spec.Range.From.IsAuto() && spec.Range.From.Value() != meta.From) ||
		(!spec.Range.To.IsAuto() && spec.Range.To.Value() != meta.To))
	res.From, res.To, res.Ranges = meta.From, meta.To, meta.Ranges

	res.Warnings = c.measureBaselines(ctx, pool, spec, meta.Created)

	done, err := c.ledger.DoneRanges(ctx, spec.Name)
	if err != nil {
		return nil, err
	}
	splits, err := c.ledger.Splits(ctx, spec.Name)
	if err != nil {
		return nil, err
	}
	for i := int64(0); i < meta.Ranges; i++ {
		if done[i] {
			res.AlreadyDone++
			continue
		}
		r, err := chunks.At(meta.From, meta.To, meta.Span, i)
		if b, ok := splits[i]; ok {
			// A half of a range split after repeated timeouts.
			r, err = chunks.Range{ID: i, Lo: b[0], Hi: b[1]}, nil
		}
		if err != nil {
			return nil, err
		}
		outcome, err := c.enqueue(ctx, queue, spec.Name, r)
		if err != nil {
			return res, err
		}
		switch outcome {
		case enqueued:
			res.Enqueued++
		case alreadyQueued:
			res.AlreadyQueued++
		case requeued:
			res.Requeued++
		}
	}
	c.log.InfoContext(ctx, "job started", slog.String("job", spec.Name), slog.String("queue", queue),
		slog.Int("enqueued", res.Enqueued), slog.Int("requeued", res.Requeued), slog.Int("already_queued", res.AlreadyQueued))
	return res, nil
}

type enqueueOutcome int

const (
	enqueued enqueueOutcome = iota
	alreadyQueued
	requeued
)

func (c *Control) enqueue(ctx context.Context, queue, job string, r chunks.Range) (enqueueOutcome, error) {
	task, id, err := runner.NewTask(runner.Payload{Job: job, Range: r.ID, Lo: r.Lo, Hi: r.Hi})
	if err != nil {
		return 0, err
	}
	opts := runner.TaskOptions(queue, id)
	_, err = c.client.EnqueueContext(ctx, task, opts...)
	if err == nil {
		return enqueued, nil
	}
	if !errors.Is(err, asynq.ErrTaskIDConflict) {
		return 0, fmt.Errorf("enqueue %s range %d: %w", job, r.ID, err)
	}
	info, err := c.inspector.GetTaskInfo(queue, id)
	if err != nil {
		return 0, fmt.Errorf("inspect task %s: %w", id, err)
	}
	switch info.State {
	case asynq.TaskStateArchived, asynq.TaskStateCompleted:
		// Archived: the range failed and the operator starts the job again
		// to retry it. Completed but not done in the ledger: the ledger lost
		// its mark, so the range must run again (its pending rows make
		// finished work a no-op).
		if err := c.inspector.DeleteTask(queue, id); err != nil {
			return 0, fmt.Errorf("delete old task %s: %w", id, err)
		}
		if err := c.ledger.ClearFailed(ctx, job, r.ID); err != nil {
			return 0, err
		}
		if _, err := c.client.EnqueueContext(ctx, task, opts...); err != nil {
			return 0, fmt.Errorf("re-enqueue %s range %d: %w", job, r.ID, err)
		}
		return requeued, nil
	}
	return alreadyQueued, nil
}

// Status is a job's progress as status prints it.
type Status struct {
	Job          string           `json:"job"`
	Queue        string           `json:"queue"`
	State        string           `json:"state"`
	DryRun       bool             `json:"dry_run,omitempty"`
	RangesTotal  int64            `json:"ranges_total"`
	RangesDone   int64            `json:"ranges_done"`
	RangesFailed int64            `json:"ranges_failed"`
	RowsDone     int64            `json:"rows_done"`
	Batches      int64            `json:"batches"`
	Retries      int64            `json:"retries"`
	PauseReason  string           `json:"pause_reason,omitempty"`
	Failures     []ledger.Failure `json:"failures,omitempty"`
	Created      time.Time        `json:"created"`
	// Finished is when the last range was done; the average rate and pace
	// stop there instead of decaying while the finished job sits in Redis.
	Finished *time.Time `json:"finished,omitempty"`
	// EstimatedRows is the planner's count of pending rows in the job's key
	// range at the first start. Progress (0..1) is RowsDone against it
	// while it is plausible; with no estimate, or once more rows were
	// written than it predicted, or as many while ranges remain (stale
	// statistics: the estimate is plainly
	// wrong), Progress is the share of ranges done, and ProgressBasis says
	// which.
	EstimatedRows int64   `json:"estimated_rows"`
	Progress      float64 `json:"progress"`
	ProgressBasis string  `json:"progress_basis"`
	// AvgRowsPerSec is rows written over the time from the first start to
	// now, or to Finished once the job is done.
	AvgRowsPerSec float64 `json:"avg_rows_per_sec"`
	// ETASeconds is the time left, -1 when unknown: rows left at the
	// average rate on the rows basis, ranges left at the average time per
	// range so far on the ranges basis.
	ETASeconds float64 `json:"eta_seconds"`
	// ExpectedRows is what the job's rate would have written by now (0
	// without a rate): compare with RowsDone to see whether it keeps pace.
	ExpectedRows int64 `json:"expected_rows,omitempty"`
	// Rate and MaxWorkers are the limits in force: the job file's, or a
	// live override.
	Rate       float64           `json:"rate"`
	MaxWorkers int               `json:"max_workers"`
	Overrides  map[string]string `json:"overrides,omitempty"`
	Guard      *GuardStatus      `json:"guard,omitempty"`
}

// Job states.
const (
	StateQueued  = "queued"
	StateRunning = "running"
	StatePaused  = "paused"
	StateDone    = "done"
	StateFailed  = "failed"
)

// ErrUnknownJob means no job of that name was ever started on this Redis.
var ErrUnknownJob = errors.New("unknown job")

// Status reads a job's progress.
func (c *Control) Status(ctx context.Context, job string) (*Status, error) {
	snap, err := c.ledger.Snapshot(ctx, job)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, fmt.Errorf("%w %q: no ledger under %s; list jobs with enqueuer status, or start it with enqueuer start -job FILE", ErrUnknownJob, job, c.ledger.MetaKey(job))
	}
	if err != nil {
		return nil, err
	}
	s := &Status{
		Job: job, Queue: snap.Meta.Queue, RangesTotal: snap.Meta.Ranges, RangesDone: snap.RangesDone,
		RangesFailed: int64(len(snap.Failed)), RowsDone: snap.Rows, Batches: snap.Batches, Retries: snap.Retries,
		Failures: snap.Failed, Created: snap.Meta.Created, DryRun: snap.Meta.DryRun,
	}
	var spec *jobspec.Spec
	if raw, err := c.ledger.Spec(ctx, job); err == nil {
		spec, _ = jobspec.FromJSON(raw)
	}
	// Freshness is judged on Redis's clock, as the workers judge it.
	now, err := c.ledger.Now(ctx)
	if err != nil {
		return nil, err
	}
	if s.Guard, s.Overrides, err = c.guardStatus(ctx, job, spec, now); err != nil {
		return nil, err
	}
	if len(s.Overrides) == 0 {
		s.Overrides = nil
	}
	if spec != nil {
		s.Rate, s.MaxWorkers = spec.Rate, spec.MaxWorkers
	}
	if v, ok := s.Overrides[ledger.OverrideRate]; ok {
		s.Rate, _ = strconv.ParseFloat(v, 64)
	}
	if v, ok := s.Overrides[ledger.OverrideMaxWorkers]; ok {
		s.MaxWorkers, _ = strconv.Atoi(v)
	}
	finished := s.RangesDone >= s.RangesTotal ||
		(s.RangesFailed > 0 && s.RangesDone+s.RangesFailed >= s.RangesTotal)
	switch {
	case finished:
		// Nothing can pause a job with no range left to run: a switch left
		// on, or a guard nobody runs any more, is no alarm.
	case on(snap.Pause.Global):
		s.PauseReason = pause.FlagReason(c.ledger.GlobalPauseKey(), snap.Pause.Global)
	case on(snap.Pause.Job):
		s.PauseReason = pause.FlagReason(c.ledger.PauseKey(job), snap.Pause.Job)
	case snap.Pause.QueuePaused:
		s.PauseReason = pause.QueueReason(snap.Meta.Queue)
	case s.Overrides["error"] != "":
		s.PauseReason = pause.OverrideReason(s.Overrides["error"])
	case s.Guard != nil && s.Guard.State == string(guard.StatePause):
		s.PauseReason = "guard: " + strings.Join(s.Guard.Reasons, "; ")
	case s.Guard != nil && s.Guard.Stale && !s.Guard.Expires.IsZero() &&
		now.Sub(s.Guard.Expires) >= guard.LeaseTTL(spec.Guard.CheckEvery.D()):
		// Workers pause on their own once the decision is this old.
		s.PauseReason = fmt.Sprintf("guard: no fresh decision for %s (the leader is gone and no worker took over; are workers running?)",
			now.Sub(s.Guard.Expires).Round(time.Second))
	}
	switch {
	case s.RangesDone >= s.RangesTotal:
		s.State = StateDone
	case s.RangesFailed > 0 && s.RangesDone+s.RangesFailed >= s.RangesTotal:
		s.State = StateFailed
	case s.PauseReason != "":
		s.State = StatePaused
	case snap.Alive:
		s.State = StateRunning
	default:
		s.State = StateQueued
	}
	end := time.Now()
	if s.State == StateDone && !snap.Meta.Finished.IsZero() {
		f := snap.Meta.Finished
		s.Finished, end = &f, f
	}
	s.progress(snap.Meta, end)
	return s, nil
}

// Progress bases.
const (
	BasisRows   = "rows"
	BasisRanges = "ranges"
)

// progress fills the progress, average rate, ETA and expected pace.
func (s *Status) progress(m ledger.Meta, now time.Time) {
	s.EstimatedRows = m.Estimate
	s.ProgressBasis = BasisRanges
	if m.Estimate > 0 && s.RowsDone < m.Estimate {
		s.ProgressBasis = BasisRows
	}
	switch {
	case s.RangesTotal > 0 && s.RangesDone >= s.RangesTotal:
		s.Progress = 1
	case s.ProgressBasis == BasisRows:
		s.Progress = float64(s.RowsDone) / float64(m.Estimate)
	case s.RangesTotal > 0:
		s.Progress = float64(s.RangesDone) / float64(s.RangesTotal)
	}
	s.ETASeconds = -1
	elapsed := now.Sub(m.Created).Seconds()
	if elapsed > 0 {
		s.AvgRowsPerSec = float64(s.RowsDone) / elapsed
		if s.Rate > 0 {
			s.ExpectedRows = int64(s.Rate * elapsed)
		}
	}
	switch {
	case s.RangesTotal > 0 && s.RangesDone >= s.RangesTotal:
		s.ETASeconds = 0
	case s.ProgressBasis == BasisRows && s.AvgRowsPerSec > 0 && m.Estimate > s.RowsDone:
		s.ETASeconds = float64(m.Estimate-s.RowsDone) / s.AvgRowsPerSec
	case s.ProgressBasis == BasisRanges && s.RangesDone > 0 && elapsed > 0:
		s.ETASeconds = elapsed * float64(s.RangesTotal-s.RangesDone) / float64(s.RangesDone)
	}
}

// Jobs lists the names of every started job.
func (c *Control) Jobs(ctx context.Context) ([]string, error) { return c.ledger.Jobs(ctx) }

// Pause sets the pause flag of job, or of every job when job is "". The
// flag's value says who paused and when (pause.FlagValue), so status shows whom
// to ask before resuming; by is e.g. "alice@db-1 via enqueuer".
func (c *Control) Pause(ctx context.Context, job, by string) error {
	if job != "" {
		if _, err := c.ledger.Meta(ctx, job); errors.Is(err, ledger.ErrNotFound) {
			return fmt.Errorf("%w %q: nothing to pause", ErrUnknownJob, job)
		}
	}
	return c.ledger.SetPause(ctx, job, pause.FlagValue(by, time.Now()))
}

// Resume clears the pause flag of job, or the global one. An unknown job is
// an error: clearing an absent key would succeed, and a typo would print
// "resumed" while the real job stays paused.
func (c *Control) Resume(ctx context.Context, job string) error {
	if job != "" {
		if _, err := c.ledger.Meta(ctx, job); errors.Is(err, ledger.ErrNotFound) {
			return fmt.Errorf("%w %q: nothing to resume", ErrUnknownJob, job)
		}
	}
	return c.ledger.ClearPause(ctx, job)
}

// Close releases the asynq client and inspector; the Redis client stays
// open because the caller owns it.
func (c *Control) Close() error {
	// Both were built from a caller's client, so closing them does not
	// close that client.
	return errors.Join(c.client.Close(), c.inspector.Close())
}

func on(v string) bool {
	p, _ := pause.FlagOn(v)
	return p
}
