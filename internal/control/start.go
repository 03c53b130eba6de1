package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/preflight"
	"github.com/ebbhq/ebb/internal/probe"
	"github.com/ebbhq/ebb/internal/rangetask"
	"github.com/ebbhq/ebb/internal/signing"
)

// ErrDryRunMismatch refuses to mix a dry run and a real run of one job.
var ErrDryRunMismatch = errors.New("dry run and real run of one job")

// StartResult counts what start did with each range.
type StartResult struct {
	Job   string `json:"job"`
	Queue string `json:"queue"`
	// From and To bound the job's key space (an integer key is a JSON
	// number, as before key shapes).
	From          keyspace.Key `json:"from"`
	To            keyspace.Key `json:"to"`
	Ranges        int64        `json:"ranges"`
	Enqueued      int          `json:"enqueued"`
	AlreadyQueued int          `json:"already_queued"`
	AlreadyDone   int          `json:"already_done"`
	Requeued      int          `json:"requeued"`
	// SpecChanged names the job file's fields that differ from the spec
	// stored by the previous start, which this start replaced.
	SpecChanged []string `json:"spec_changed,omitempty"`
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
// It reads as its steps: refuse what cannot run, find or plan the slicing,
// store the job, measure the guard's baselines, enqueue what is left.
func (c *Control) Start(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, queue string) (*StartResult, error) {
	if queue == "" {
		queue = rangetask.DefaultQueue
	}
	space, err := c.checkStartable(ctx, pool, spec, queue)
	if err != nil {
		return nil, err
	}
	meta, fresh, err := c.storedMeta(ctx, spec)
	if err != nil {
		return nil, err
	}
	if fresh {
		if meta, err = planSlicing(ctx, pool, spec, space, queue); err != nil {
			return nil, err
		}
		if err := c.checkRoom(ctx, spec.Name, meta.Ranges); err != nil {
			return nil, err
		}
	} else if err := keyFits(spec, space, meta); err != nil {
		return nil, err
	}
	specJSON, err := spec.JSON()
	if err != nil {
		return nil, fmt.Errorf("encode spec of %s: %w", spec.Name, err)
	}
	key, err := c.signingKey()
	if err != nil {
		return nil, err
	}
	meta.SpecSig = key.Sign(signing.KindSpec, specJSON)
	var changed []string
	if !fresh {
		if changed, err = c.specChanges(ctx, spec.Name, specJSON); err != nil {
			return nil, err
		}
	}
	// The stored slicing wins over a later job file's: done marks are
	// keyed by range ID and stay meaningful only while it is fixed.
	if meta, err = c.ledger.SaveJob(ctx, spec.Name, specJSON, meta); err != nil {
		return nil, err
	}
	from, to := meta.Slicing.Bounds()
	res := &StartResult{Job: spec.Name, Queue: queue, From: from, To: to, Ranges: meta.Ranges,
		KeptSlicing: !fresh && slicingDiffers(spec, meta), SpecChanged: changed}
	res.Warnings = append(c.measureBaselines(ctx, pool, spec, meta.Created), c.blindPromRules(ctx, pool, spec)...)
	done, err := c.ledger.DoneRanges(ctx, spec.Name)
	if err != nil {
		return nil, err
	}
	splits, err := c.ledger.Splits(ctx, spec.Name)
	if err != nil {
		return nil, err
	}
	if err := c.enqueueRanges(ctx, queue, spec.Name, meta, done, splits, res); err != nil {
		if fresh {
			return nil, c.undoStart(ctx, queue, spec.Name, meta.Ranges, err)
		}
		// A job started before keeps what it had; this start's ranges
		// that made it are queued once, and start again adds the rest.
		return res, fmt.Errorf("%w; the job's earlier ranges are as they were, and enqueuer start -job FILE again enqueues the rest", err)
	}
	c.log.InfoContext(ctx, "job started", slog.String("job", spec.Name), slog.String("queue", queue),
		slog.Int("enqueued", res.Enqueued), slog.Int("requeued", res.Requeued), slog.Int("already_queued", res.AlreadyQueued))
	return res, nil
}

// checkStartable refuses a job that cannot run: a bad queue name, a guard
// that cannot work here, or a preflight refusal. It returns the job's key
// space, as preflight found it.
func (c *Control) checkStartable(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, queue string) (keyspace.Space, error) {
	if err := rangetask.ValidQueue(queue); err != nil {
		return keyspace.Space{}, err
	}
	if err := CheckGuard(spec, c.env); err != nil {
		return keyspace.Space{}, err
	}
	target, closeTarget, err := c.copyTarget(ctx, spec)
	if err != nil {
		return keyspace.Space{}, err
	}
	defer closeTarget()
	res, err := preflight.Run(ctx, pool, spec, target)
	if err != nil {
		return keyspace.Space{}, err
	}
	return res.Space, nil
}

// storedMeta returns the job's stored meta, or fresh when it was never
// started. A job started as a dry run cannot be started for real under the
// same name, nor the other way round: done marks of a dry run mean "rolled
// back", not "written", and a real run must never skip ranges on their
// account.
func (c *Control) storedMeta(ctx context.Context, spec *jobspec.Spec) (meta ledger.Meta, fresh bool, err error) {
	meta, err = c.ledger.Meta(ctx, spec.Name)
	if errors.Is(err, ledger.ErrNotFound) {
		return ledger.Meta{}, true, nil
	}
	if err != nil {
		return ledger.Meta{}, false, err
	}
	if meta.DryRun != spec.DryRun {
		was, now := "for real", "as a dry run"
		if meta.DryRun {
			was, now = "as a dry run", "for real"
		}
		return ledger.Meta{}, false, fmt.Errorf("%w: job %s was started %s and cannot be started %s under the same name; run enqueuer cleanup %s first (or pick another name)",
			ErrDryRunMismatch, spec.Name, was, now, spec.Name)
	}
	return meta, false, nil
}

// planSlicing slices a job started for the first time: it resolves auto
// bounds from the key's min and max, slices the space, and asks the
// planner how many rows are pending in it.
func planSlicing(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, space keyspace.Space, queue string) (ledger.Meta, error) {
	bounds, err := readBounds(ctx, pool, spec, space)
	if err != nil {
		return ledger.Meta{}, err
	}
	from, to, err := bounds.resolve(spec)
	if err != nil {
		return ledger.Meta{}, err
	}
	sl, err := space.SliceTable(ctx, pool, spec.QuotedTable(), from, to, spec.TaskSpan, spec.Window.Window)
	if err != nil {
		return ledger.Meta{}, err
	}
	if err := checkRanges(spec, from, to, sl.Ranges()); err != nil {
		return ledger.Meta{}, err
	}
	meta := ledger.Meta{Queue: queue, Slicing: sl, Ranges: sl.Ranges(), Created: time.Now(), DryRun: spec.DryRun}
	if meta.Estimate, err = estimatePending(ctx, pool, spec, space, from, to); err != nil {
		return ledger.Meta{}, err
	}
	return meta, nil
}

// ErrKeyChanged is a job started again with a key of another shape than
// the one its stored slicing was cut for.
var ErrKeyChanged = errors.New("the job's key changed since its first start")

// keyFits refuses a start whose key no longer matches the stored slicing
// (key: id edited to key: [tenant_id, id], or a key column's type
// changed): every stored range and cursor is a key of the old shape, and
// the workers would refuse each of them, range by range.
func keyFits(spec *jobspec.Spec, space keyspace.Space, meta ledger.Meta) error {
	from, to := meta.Slicing.Bounds()
	if _, err := space.Args(from, to); err != nil {
		return fmt.Errorf("job %s was first started with a key whose bounds are [%s, %s], and key %s of %s is now walked as (%s): %w; run enqueuer cleanup %s (or give the job a new name) to start it over with the new key",
			spec.Name, from, to, spec.Key, spec.Table, strings.Join(space.Names(), ", "), ErrKeyChanged, spec.Name)
	}
	return nil
}

// slicingDiffers reports whether the job file asks for another slicing
// than the stored one (which start keeps).
func slicingDiffers(spec *jobspec.Spec, meta ledger.Meta) bool {
	from, to := meta.Slicing.Bounds()
	return meta.Slicing.Span() != spec.TaskSpan ||
		(!spec.Range.From.IsAuto() && !spec.Range.From.Key().Equal(from)) ||
		(!spec.Range.To.IsAuto() && !spec.Range.To.Key().Equal(to))
}

// enqueueRanges enqueues every range of meta not in done, and counts in res
// what became of each. A range split after repeated timeouts is enqueued as
// its stored bounds, not the slicing's.
func (c *Control) enqueueRanges(ctx context.Context, queue, job string, meta ledger.Meta, done map[int64]bool, splits map[int64]keyspace.Range, res *StartResult) error {
	for i := int64(0); i < meta.Ranges; i++ {
		if done[i] {
			res.AlreadyDone++
			continue
		}
		r, err := rangeBounds(meta, splits, i)
		if err != nil {
			return err
		}
		outcome, err := c.enqueue(ctx, queue, job, r)
		if err != nil {
			return err
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
	return nil
}

// specChanges names the top-level fields of the stored spec of job that
// specJSON changes, sorted; none when the job has no stored spec.
func (c *Control) specChanges(ctx context.Context, job string, specJSON []byte) ([]string, error) {
	old, err := c.ledger.Spec(ctx, job)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var was, now map[string]json.RawMessage
	if json.Unmarshal(old, &was) != nil || json.Unmarshal(specJSON, &now) != nil {
		return []string{"the whole spec"}, nil
	}
	var changed []string
	for k, v := range now {
		if !bytes.Equal(was[k], v) {
			changed = append(changed, k)
		}
	}
	for k := range was {
		if _, ok := now[k]; !ok {
			changed = append(changed, k)
		}
	}
	sort.Strings(changed)
	return changed, nil
}

// taskBytes is about what one range task costs Redis: asynq's task hash
// (payload, options, state) and its entry in the pending list, with the
// allocator's overhead; measured at 500-700 bytes on Redis 7.
const taskBytes = 1024

// ErrNoRoom means Redis has not the memory for the job's range tasks.
var ErrNoRoom = errors.New("not enough room in Redis")

// checkRoom refuses a first start whose range tasks would not fit under
// Redis's maxmemory (with a tenth kept free): an enqueue cut off by
// Redis's out-of-memory error leaves a job half-enqueued and Redis full
// for every other user of it.
func (c *Control) checkRoom(ctx context.Context, job string, ranges int64) error {
	used, limit, err := c.ledger.Memory(ctx)
	if err != nil || limit == 0 {
		return err // no maxmemory: nothing to check against
	}
	need := ranges * taskBytes
	if free := limit*9/10 - used; need > free {
		return fmt.Errorf("%w: job %s has %d range tasks, about %d MiB, and Redis has %d MiB free under maxmemory (%d MiB, a tenth kept free); raise task_span or Redis's maxmemory",
			ErrNoRoom, job, ranges, need>>20, max(free, 0)>>20, limit>>20)
	}
	return nil
}

// undoStart removes what a first start of job stored before its enqueue
// failed (the tasks it enqueued, the job's keys), so a failed start leaves
// nothing half-enqueued: the operator fixes the cause and starts again
// from nothing. It runs detached from ctx, which may be what failed.
func (c *Control) undoStart(ctx context.Context, queue, job string, ranges int64, cause error) error {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	var errs []error
	for i := int64(0); i < ranges; i++ {
		err := c.inspector.DeleteTask(queue, rangetask.TaskID(job, i))
		if err != nil && !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
			errs = append(errs, err)
			break
		}
	}
	if _, err := c.ledger.DeleteJob(uctx, job); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("start %s failed: %w; undoing it failed too (%w): run enqueuer cleanup %s --force before starting again", job, cause, errors.Join(errs...), job)
	}
	c.log.WarnContext(ctx, "start failed and was undone: nothing of the job is left in Redis", slog.String("job", job), slog.Any("err", cause))
	return fmt.Errorf("start %s failed and was undone, nothing of it is left in Redis: %w", job, cause)
}

type enqueueOutcome int

const (
	enqueued enqueueOutcome = iota
	alreadyQueued
	requeued
)

func (c *Control) enqueue(ctx context.Context, queue, job string, r keyspace.Range) (enqueueOutcome, error) {
	key, err := c.signingKey()
	if err != nil {
		return 0, err
	}
	p, err := rangetask.Payload{Job: job, Range: r.ID, Lo: r.Lo, Hi: r.Hi, After: r.After}.Sign(key)
	if err != nil {
		return 0, err
	}
	task, id, err := rangetask.NewTask(p)
	if err != nil {
		return 0, err
	}
	opts := rangetask.TaskOptions(queue, id)
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

// signingKey is the key in EBB_SIGNING_KEY (none when unset): start signs
// the spec and every task with it, for workers that verify them.
func (c *Control) signingKey() (signing.Key, error) {
	return signing.Parse(c.env(signing.EnvVar))
}

// measureBaselines stores the baseline of every relative rule before the
// first batch: PromQL over the window before start, other signals sampled
// now. A baseline that cannot be measured is a warning: the leader tries
// again, and until then the rule counts as blind (slow, then pause).
// blindPromRules reads every prometheus rule once and warns, by name,
// about each whose query returns no series or NaN now and counts that as
// blind (on_empty/on_nan: blind, the default): the guard would slow, then
// pause the job within seconds of its start. A query over traffic that is
// not there yet (before the fleet writes anything) does this, and a job
// that pauses itself at once with no word at start is a puzzle at 2 a.m.
func (c *Control) blindPromRules(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec) []string {
	prom := *spec
	prom.Guard.Rules = nil
	for _, r := range spec.Guard.Rules {
		if r.Prometheus != "" {
			prom.Guard.Rules = append(prom.Guard.Rules, r)
		}
	}
	if len(prom.Guard.Rules) == 0 {
		return nil
	}
	s, err := probe.NewSampler(probe.SamplerConfig{Spec: &prom, Primary: pool, Getenv: c.env,
		CommitP95: func(context.Context) (float64, error) { return 0, errors.New("no commits before start") }})
	if err != nil {
		return []string{fmt.Sprintf("prometheus rules: %v", err)}
	}
	readings := s.Sample(ctx)
	var warnings []string
	for _, r := range prom.Guard.Rules {
		err := readings[r.Name].Err
		switch {
		case err == nil:
		case strings.Contains(err.Error(), "no series") && r.OnEmpty != jobspec.OnZero:
			warnings = append(warnings, fmt.Sprintf("rule %s: its query returns no series now, which counts as blind (on_empty: blind, the default): the guard slows, then pauses the job until it returns a number; if no series means nothing is wrong (no traffic yet), set on_empty: zero", r.Name))
		case strings.Contains(err.Error(), "NaN") && r.OnNaN != jobspec.OnZero:
			warnings = append(warnings, fmt.Sprintf("rule %s: its query returns NaN now, which counts as blind (on_nan: blind, the default): the guard slows, then pauses the job until it returns a number; if NaN means nothing is wrong (a ratio over no traffic), set on_nan: zero", r.Name))
		}
	}
	return warnings
}

func (c *Control) measureBaselines(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, created time.Time) []string {
	need := false
	for _, r := range spec.Guard.Rules {
		need = need || r.NeedsBaseline()
	}
	if !need {
		return nil
	}
	s, err := probe.NewSampler(probe.SamplerConfig{Spec: spec, Primary: pool, Getenv: c.env,
		CommitP95: func(context.Context) (float64, error) { return 0, errors.New("no commits before start") }})
	if err == nil {
		_, err = probe.MeasureBaselines(ctx, c.ledger, s, spec, created)
	}
	if err != nil {
		return []string{fmt.Sprintf("baseline: %v (the guard leader retries; until then those rules slow, then pause the job)", err)}
	}
	return nil
}
