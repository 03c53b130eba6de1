package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ebbhq/ebb/internal/batch"
	"github.com/ebbhq/ebb/internal/chunks"
	"github.com/ebbhq/ebb/internal/clock"
	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
	"github.com/ebbhq/ebb/internal/metrics"
	"github.com/ebbhq/ebb/internal/rangetask"
)

// walker walks one range task from its checkpoint to its end. Run reads as
// the loop docs/architecture.md draws: gate → read → (cut → throttle → write+commit →
// checkpoint → adapt → pace) per batch, until no pending key is left. One
// walker serves one run of one task; it is not safe for concurrent use. The
// context is passed to every step, never kept here.
type walker struct {
	r     *Runner
	queue string
	spec  *jobspec.Spec
	p     rangetask.Payload
	// attrs name the range in every log line.
	attrs []any
	retry *retryPolicy

	// Set by open.
	exec  *batch.Executor
	space keyspace.Space
	sizer *chunks.Sizer
	// slot names this walker's batches in the max_workers slots.
	slot  string
	start time.Time
	// token is this run's fencing token on the range (claim); 0 unfenced.
	token int64
	// run is the job's run the walk belongs to (ledger.Meta.Run).
	run string

	// pos is the lower bound of the next read: the range's first key,
	// read inclusive, until a batch commits; from then on the last
	// committed key (past), read strictly after.
	pos  keyspace.Key
	past bool
	// lim is what the next batch obeys, as of the last gate.
	lim           guard.Limits
	rows, batches int64
}

// newWalker returns the walker of one run of range task p of queue.
func (r *Runner) newWalker(queue string, spec *jobspec.Spec, p rangetask.Payload) *walker {
	return &walker{
		r: r, queue: queue, spec: spec, p: p, pos: p.Lo, past: p.After,
		attrs: []any{slog.String("job", p.Job), slog.Int64("range", p.Range), slog.Any("lo", p.Lo), slog.Any("hi", p.Hi)},
		retry: newRetryPolicy(spec.Retries),
	}
}

// Run processes the range from its checkpoint to its end and marks it done.
// An error leaves the checkpoint of the last committed batch behind, which
// the next run resumes from.
func (w *walker) Run(ctx context.Context) error {
	done, err := w.resume(ctx)
	if err != nil || done {
		return err
	}
	if w.run, err = w.r.cfg.Ledger.Run(ctx, w.p.Job); err != nil {
		return err
	}
	// A range of a paused job does no database work at all until the
	// pause lifts: no connection, no claim (whose failure on a database
	// that takes no writes would pause the job again, over an operator's
	// resume).
	if err := w.gate(ctx); err != nil {
		if err = w.hold(ctx, err); err != nil {
			return idle(err, true, w.r.cfg.PauseRecheck)
		}
	}
	if err := w.open(ctx); err != nil {
		return err
	}
	if done, err := w.claim(ctx); err != nil || done {
		return err
	}
	for started := false; ; started = true {
		if err := w.gate(ctx); err != nil {
			if err = w.hold(ctx, err); err != nil {
				return idle(err, w.batches == 0, w.r.cfg.PauseRecheck)
			}
		}
		if !started {
			// Logged once the range may run: a range dequeued while its
			// job is paused goes back without a line, so a long pause is
			// one "job paused" line, not one per range per bounce.
			w.r.log.InfoContext(ctx, "range start", append(w.attrs, slog.Any("from", w.pos), slog.Bool("after", w.past))...)
		}
		keys, err := w.read(ctx)
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			break
		}
		err = w.writeKeys(ctx, keys)
		if errors.Is(err, errSplit) {
			// Two new ranges carry on with the rest; this one is done.
			return nil
		}
		if err != nil {
			return err
		}
		if !w.advance(keys[len(keys)-1]) {
			break
		}
	}
	return w.finish(ctx)
}

// resume moves the walker past the range's checkpoint: its reads continue
// strictly after the last committed key. done is true when the range needs
// no more work: it is marked done, or its checkpoint is its last key (a
// crash between the last commit and the done mark), which resume then
// marks done.
func (w *walker) resume(ctx context.Context) (done bool, err error) {
	l := w.r.cfg.Ledger
	done, err = l.IsDone(ctx, w.p.Job, w.p.Range)
	if err != nil || done {
		return done, err
	}
	cp, ok, err := l.Checkpoint(ctx, w.p.Job, w.p.Range)
	if err != nil || !ok {
		return false, err
	}
	if cp.Equal(w.p.Hi) {
		return true, l.MarkDone(ctx, w.p.Job, w.p.Range, 0)
	}
	w.pos, w.past = cp, true
	return false, nil
}

// claim takes the range for this run: a fencing token newer than any
// earlier run's, from the fence table beside the job's table, mirrored in
// the ledger. Every batch, checkpoint, split and done mark of the run
// carries it, and each is refused once a newer run has claimed the range,
// so a worker that stalled past its lease and woke up cannot write into
// the range its successor owns. The claim also returns the last key
// committed under any earlier token, written in the same transaction as
// the batch itself: the walk resumes after it even when the worker died
// between its COMMIT and its checkpoint in Redis, so a batch is never
// applied twice. done is true when that key is the range's last.
//
// A dry run is not fenced: its batches roll back, so there is nothing a
// stale worker could apply twice.
func (w *walker) claim(ctx context.Context) (done bool, err error) {
	if w.spec.DryRun {
		return false, nil
	}
	table := w.spec.QuotedFenceTable()
	if err := w.r.ensureFence(ctx, w.exec, w.spec.DatabaseEnv, table); err != nil {
		if batch.IsUnwritable(err) {
			w.exec.Reset()
		}
		return false, fmt.Errorf("job %s: %w", w.p.Job, err)
	}
	f, cursor, ok, err := w.exec.Claim(ctx, table, w.p.Job, w.run, w.p.Range)
	if batch.IsUnwritable(err) {
		// The next session must see the database as it is by then.
		w.exec.Reset()
	}
	if err != nil {
		return false, fmt.Errorf("job %s: %w", w.p.Job, err)
	}
	if err := w.r.cfg.Ledger.Fence(ctx, w.p.Job, w.p.Range, f.Token); err != nil {
		return false, err
	}
	w.token = f.Token
	if !ok {
		return false, nil
	}
	if cursor.Equal(w.p.Hi) {
		return true, w.r.cfg.Ledger.MarkDone(ctx, w.p.Job, w.p.Range, w.token)
	}
	w.pos, w.past = cursor, true
	return false, nil
}

// open connects to the job's database, picks this worker's sizer and a
// slot name, and announces the range: a log line, a warning when a stop
// could cut one of its batches, and the job's alive mark.
func (w *walker) open(ctx context.Context) error {
	pool, err := w.r.cfg.Pools(ctx, w.spec.DatabaseEnv)
	if err != nil {
		return fmt.Errorf("job %s: %w", w.p.Job, err)
	}
	// The worker reads the key's type from the catalog (one lookup per
	// range task) rather than from the job's stored slicing: it never
	// loads the meta, and the table is the truth about its key.
	if w.space, err = keyspace.Open(ctx, pool, w.spec.QuotedTable(), w.spec.Key...); err != nil {
		return fmt.Errorf("job %s: %w", w.p.Job, err)
	}
	w.exec = batch.NewExecutor(pool, w.spec, w.space)
	if c := w.spec.Copy; c.Across() {
		target, err := w.r.cfg.Pools(ctx, c.DatabaseEnv)
		if err != nil {
			return fmt.Errorf("job %s: copy target's database: %w", w.p.Job, err)
		}
		if err := w.exec.CopyAcross(ctx, target, w.spec, w.space); err != nil {
			return fmt.Errorf("job %s: %w", w.p.Job, err)
		}
	}
	t := w.spec.Timeouts
	if worst := t.Lock.D() + t.Statement.D() + w.spec.Sleep.D(); w.r.cfg.ShutdownTimeout > 0 && worst >= w.r.cfg.ShutdownTimeout {
		w.r.log.WarnContext(ctx, "shutdown timeout shorter than the job's worst batch",
			append(w.attrs, slog.Duration("worst_batch", worst), slog.Duration("shutdown_timeout", w.r.cfg.ShutdownTimeout),
				slog.String("hint", "raise the worker's -shutdown-timeout above timeouts.lock + timeouts.statement + sleep"))...)
	}
	if err := w.r.cfg.Ledger.Touch(ctx, w.p.Job, w.r.cfg.AliveTTL); err != nil {
		return err
	}
	w.r.touched.Store(w.p.Job, time.Now())
	w.sizer = w.r.sizer(w.spec)
	w.slot = fmt.Sprintf("%s:%d", w.r.cfg.ID, w.r.seq.Add(1))
	w.start = time.Now()
	return nil
}

// gate is the door every read and batch passes: it returns a yield when the
// job is paused or the worker drains (or the context's error), and
// otherwise keeps the limits the next batch obeys.
func (w *walker) gate(ctx context.Context) error {
	lim, err := w.limits(ctx)
	if err != nil {
		return err
	}
	w.lim = lim
	return nil
}

// limits asks the pause switches and the guard what the range may do now.
func (w *walker) limits(ctx context.Context) (guard.Limits, error) {
	return w.r.limits(ctx, w.queue, w.run, w.spec, w.p)
}

// read returns the next pending keys of the range from pos (after pos once
// a batch committed), at most read_batch of them, ascending. A transient
// failure is retried under the same policy as a write.
func (w *walker) read(ctx context.Context) ([]keyspace.Key, error) {
	for {
		read := w.exec.ReadFrom
		if w.past {
			read = w.exec.ReadAfter
		}
		keys, err := read(ctx, w.pos, w.p.Hi, w.spec.ReadBatch)
		if err == nil {
			w.retry.succeeded()
			return keys, nil
		}
		if err := w.failed(ctx, err, slog.String("step", "read")); err != nil {
			return nil, err
		}
	}
}

// writeKeys writes the keys one read returned, batch by batch. The first
// batch runs under the limits the read passed the gate with; every later
// one, and every recut or retry, passes the gate again, so a pause or a
// slow-down lands between two batches and never inside one.
func (w *walker) writeKeys(ctx context.Context, keys []keyspace.Key) error {
	for i, gated := 0, true; i < len(keys); gated = false {
		if !gated {
			if err := w.gate(ctx); err != nil {
				if err = w.hold(ctx, err); err != nil {
					return err
				}
			}
		}
		n, err := w.batch(ctx, keys[i:])
		if err != nil {
			return err
		}
		i += n
	}
	return nil
}

// batch runs the next batch of keys: cut it at the sizer's size under the
// current limits, wait for the fleet's rate and a slot, write and commit
// it, then checkpoint, adapt the size and pace. It returns how many keys it
// consumed, 0 when the batch must be cut again (the limits changed while it
// waited) or was failed and is to be retried.
func (w *walker) batch(ctx context.Context, keys []keyspace.Key) (int, error) {
	size := w.sizer.CapAndSize(batchCap(w.lim))
	n := min(size, len(keys))
	lo, hi := keys[0], keys[n-1]
	release, err := w.r.throttle(ctx, w.spec, w.slot, n, w.lim, func() (guard.Limits, error) { return w.limits(ctx) })
	if errors.Is(err, errRecut) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	began := time.Now()
	rows, err := w.exec.Write(ctx, lo, hi)
	took := time.Since(began)
	release()
	if errors.Is(err, batch.ErrFenced) {
		if m := w.r.cfg.Metrics; m != nil {
			m.BatchErrors.WithLabelValues(w.p.Job, batch.ReasonFenced).Inc()
		}
		return 0, err
	}
	if err != nil {
		return 0, w.writeFailed(ctx, err, size, took, lo)
	}
	w.retry.succeeded()
	if err := w.checkpoint(ctx, hi, rows, took, n); err != nil {
		return 0, err
	}
	w.sizer.Observe(size, took, chunks.Committed, w.lim.Green)
	w.rows += rows
	w.batches++
	return n, w.pace(ctx)
}

// writeFailed handles a batch that did not commit. A lock or statement
// timeout or a deadlock is contention with live traffic: the sizer cuts the
// size at once, and a range that keeps contending at one spot is split
// rather than failed (errSplit). Otherwise it is a failure like a failed
// read.
func (w *walker) writeFailed(ctx context.Context, err error, size int, took time.Duration, lo keyspace.Key) error {
	contended := batch.IsContended(err)
	if contended {
		w.sizer.Observe(size, took, chunks.Contended, false)
	}
	err = w.failed(ctx, err, slog.String("step", "write"), slog.Int("next_size", w.sizer.Size()))
	var gaveUp *GaveUpError
	if contended && errors.As(err, &gaveUp) {
		return w.split(ctx, lo, gaveUp)
	}
	return err
}

// failed applies the range's retry policy to a failed read or write, which
// are counted alike. It returns nil when the step should run again, after
// counting the retry (ebb_batches_total and the job's stats, which status
// shows) and waiting out the backoff. Otherwise it counts a failure and
// returns what ends the range: the error itself, or a *GaveUpError once the
// job's retries in a row failed transiently.
func (w *walker) failed(ctx context.Context, err error, attrs ...any) error {
	if m := w.r.cfg.Metrics; m != nil {
		m.BatchErrors.WithLabelValues(w.p.Job, batch.Reason(err)).Inc()
	}
	if batch.IsUnwritable(err) {
		// The next session must see the database as it is then.
		w.exec.Reset()
	}
	if batch.IsConnection(err) || batch.IsUnwritable(err) {
		// Neither is the range's failure, and no retry inside the range
		// helps: the runner hands it back (outage.go).
		return err
	}
	attempt, wait, retry := w.retry.failed(err)
	if !retry {
		w.r.count(w.p.Job, metrics.OutcomeFailed)
		if batch.IsTransient(err) {
			return &GaveUpError{Attempts: attempt, Err: err}
		}
		return err
	}
	w.r.log.WarnContext(ctx, "transient error, retrying batch",
		append(append(w.attrs, attrs...), slog.Int("attempt", attempt), slog.Any("err", err))...)
	w.r.count(w.p.Job, metrics.OutcomeRetried)
	if err := w.r.cfg.Ledger.Retried(ctx, w.p.Job); err != nil {
		return err
	}
	return clock.Sleep(ctx, wait)
}

// checkpoint records a committed (or, in a dry run, rolled back) batch in
// the ledger and the metrics. It runs only after COMMIT returned, so the
// checkpoint is never ahead of the data.
func (w *walker) checkpoint(ctx context.Context, hi keyspace.Key, rows int64, took time.Duration, keys int) error {
	// The rows are committed: record that even if ctx was cancelled a moment
	// ago, or the range would look behind its real position. Bounded so a
	// Redis outage cannot hang the worker.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := w.r.cfg.Ledger.Commit(cctx, w.p.Job, w.p.Range, w.token, hi, rows, took, w.r.aliveTTL(w.p.Job, time.Now())); err != nil {
		// Redoing from the older checkpoint is safe: the pending predicate
		// turns the committed rows into a no-op.
		return err
	}
	w.r.outageOver(ctx, w.p.Job)
	if m := w.r.cfg.Metrics; m != nil {
		// A dry run's batches rolled back: a dashboard must not read
		// them as rows changed.
		if w.spec.DryRun {
			m.Batches.WithLabelValues(w.p.Job, metrics.OutcomeRolledBack).Inc()
		} else {
			m.Rows.WithLabelValues(w.p.Job).Add(float64(rows))
			m.Batches.WithLabelValues(w.p.Job, metrics.OutcomeCommitted).Inc()
		}
		m.BatchDuration.WithLabelValues(w.p.Job).Observe(took.Seconds())
		m.BatchSize.WithLabelValues(w.p.Job).Set(float64(keys))
	}
	return nil
}

// pace is the job's sleep between batches (or the override's, or the
// guard's while its decision is stale).
func (w *walker) pace(ctx context.Context) error { return clock.Sleep(ctx, w.lim.Sleep) }

// advance moves the walker past the last key read, all of whose batches
// committed; false when that key was the range's last.
func (w *walker) advance(last keyspace.Key) bool {
	if last.Equal(w.p.Hi) {
		return false
	}
	w.pos, w.past = last, true
	return true
}

// finish marks the range done.
func (w *walker) finish(ctx context.Context) error {
	if err := w.r.cfg.Ledger.MarkDone(ctx, w.p.Job, w.p.Range, w.token); err != nil {
		return err
	}
	w.r.log.InfoContext(ctx, "range done", append(w.attrs, slog.Int64("rows", w.rows), slog.Duration("elapsed", time.Since(w.start)))...)
	return nil
}

// errSplit ends a walk whose range was split: its halves are queued and
// the range itself is marked done.
var errSplit = errors.New("range split in two")

// split hands what is left of a range that kept timing out at one spot to
// two new ranges, so the rest of it is not held hostage by one hot row
// (GitLab's batched migrations do the same), and returns errSplit. A single
// key cannot be split: it fails like any batch that gave up.
func (w *walker) split(ctx context.Context, from keyspace.Key, gaveUp *GaveUpError) error {
	p := w.p
	if w.r.cfg.Enqueue == nil {
		return gaveUp
	}
	first, second, ok, err := w.exec.Split(ctx, w.spec.QuotedTable(), from, p.Hi)
	if err != nil {
		return fmt.Errorf("split %s range %d at %s: %w", p.Job, p.Range, from, err)
	}
	if !ok {
		return gaveUp
	}
	halves := [2]keyspace.Range{first, second}
	ids, err := w.r.cfg.Ledger.Split(ctx, p.Job, p.Range, w.token, halves)
	if err != nil {
		return err
	}
	for k, id := range ids {
		if err := w.r.cfg.Enqueue(ctx, w.queue, rangetask.Payload{Job: p.Job, Range: id, Lo: halves[k].Lo, Hi: halves[k].Hi, After: halves[k].After}); err != nil {
			return fmt.Errorf("requeue half of split %s range %d: %w", p.Job, p.Range, err)
		}
	}
	if err := w.r.cfg.Ledger.MarkDone(ctx, p.Job, p.Range, w.token); err != nil {
		return err
	}
	w.r.log.WarnContext(ctx, "range split after repeated timeouts at one spot",
		slog.String("job", p.Job), slog.Int64("range", p.Range), slog.Any("at", from),
		slog.Any("halves", ids), slog.Int("attempts", gaveUp.Attempts), slog.Any("err", gaveUp.Err))
	return errSplit
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
