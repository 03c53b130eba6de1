package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/clock"
	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/verify"
)

// ErrVerifyFailed means verify found rows left pending, rows that fail the
// job's check, or ranges not done.
var ErrVerifyFailed = errors.New("verify found problems")

// VerifyReport is what verify found; it is stored with the job.
type VerifyReport struct {
	Job   string `json:"job"`
	Table string `json:"table"`
	// Kind is what the job does: fill, copy or delete (jobspec.Kind*).
	Kind string    `json:"kind"`
	At   time.Time `json:"at"`
	OK   bool      `json:"ok"`
	// Problems says in words what is wrong; empty when OK.
	Problems []string `json:"problems,omitempty"`
	// Sample is set for a spot check (verify --sample); a report without
	// it read every row of the job's ranges.
	Sample       bool  `json:"sample,omitempty"`
	DryRun       bool  `json:"dry_run,omitempty"`
	RangesTotal  int64 `json:"ranges_total"`
	RangesDone   int64 `json:"ranges_done"`
	RangesFailed int64 `json:"ranges_failed"`
	// LedgerRows is what the workers recorded as written; EstimatedRows
	// the planner's pending count at the first start.
	LedgerRows    int64 `json:"ledger_rows"`
	EstimatedRows int64 `json:"estimated_rows"`
	// Rows is how many rows the walk read, in Chunks chunks.
	Rows   int64 `json:"rows"`
	Chunks int   `json:"chunks"`
	// Pending rows still match the pending predicate; PendingKeys are the
	// first few of them.
	Pending     int64          `json:"pending"`
	PendingKeys []keyspace.Key `json:"pending_keys,omitempty"`
	// Check is the job's check expression. Failing rows fail it (NULL
	// counts as a failure); Mismatches are the first few of them, or in a
	// spot check the sampled rows that are pending or fail it.
	Check      string         `json:"check,omitempty"`
	Failing    int64          `json:"failing"`
	Mismatches []keyspace.Key `json:"mismatches,omitempty"`
	// Unselected rows fail the check but not the pending predicate: the
	// job's statement would not rewrite them, so repair cannot.
	Unselected int64 `json:"unselected,omitempty"`
	// Changed rows were wrong at a first look and right at a second: live
	// traffic wrote them while verify ran. Not a failure.
	Changed     int64          `json:"changed,omitempty"`
	ChangedKeys []keyspace.Key `json:"changed_keys,omitempty"`
	// Missing, Differing and Extra are a copy's rows absent from the
	// target, different there, and there without a source row; DiffKeys
	// the first few of them.
	Missing   int64          `json:"missing,omitempty"`
	Differing int64          `json:"differing,omitempty"`
	Extra     int64          `json:"extra,omitempty"`
	DiffKeys  []keyspace.Key `json:"diff_keys,omitempty"`
	// CopyTo is a copy's target table.
	CopyTo string `json:"copy_to,omitempty"`
	// Findings are the ranges holding wrong rows, with counts and keys.
	Findings []verify.Finding `json:"findings,omitempty"`
	// DonePending are ranges the ledger marks done although some of
	// PendingKeys lie in them: where the ledger and the database disagree.
	DonePending []int64 `json:"done_pending,omitempty"`
	// Sampled is how many rows a spot check tested.
	Sampled int    `json:"sampled,omitempty"`
	Elapsed string `json:"elapsed"`
}

// VerifyOptions tune a verify run.
type VerifyOptions struct {
	// Sample spot-checks a few rows per range (the oldest, newest and
	// Random random ranges) instead of reading every row.
	Sample bool
	// Random is how many random ranges a spot check reads besides the
	// oldest and newest; default 5.
	Random int
	// ChunkRows is how many rows one chunk of the walk reads, each in its
	// own transaction; default the job's read_batch.
	ChunkRows int
	// ProgressFunc, when set, is told how far the walk got after every
	// range, and why it waits when the guard holds it.
	ProgressFunc func(VerifyProgress)
}

// VerifyProgress is how far a walk got.
type VerifyProgress struct {
	verify.Progress
	// Held is the guard's reason while it holds verify back.
	Held string
}

// Verify proves a job finished correctly: it reads every row of the job's
// ranges in short read-only chunks paced like the job (never one long
// scan), counts rows still pending or failing the job's check, names the
// ranges that hold them, and compares the ledger with the database. With
// opt.Sample it only spot-checks a few rows per range. The report is
// stored with the job; a report with problems comes back with
// ErrVerifyFailed.
func (c *Control) Verify(ctx context.Context, pool *pgxpool.Pool, job string, opt VerifyOptions) (*VerifyReport, error) {
	st, err := c.Status(ctx, job)
	if err != nil {
		return nil, err
	}
	spec, meta, err := c.storedJob(ctx, job)
	if err != nil {
		return nil, err
	}
	began := time.Now()
	r := &VerifyReport{Job: job, Table: spec.Table, Kind: spec.Kind(), At: began.UTC(), DryRun: meta.DryRun, Check: spec.Check, Sample: opt.Sample,
		RangesTotal: st.RangesTotal, RangesDone: st.RangesDone, RangesFailed: st.RangesFailed,
		LedgerRows: st.RowsDone, EstimatedRows: meta.Estimate}
	space, err := keyspace.Open(ctx, pool, spec.QuotedTable(), spec.Key...)
	if err != nil {
		return nil, err
	}
	if opt.Sample && spec.Copy != nil {
		return nil, errors.New("verify --sample spot-checks the rows of a fill or a delete; a copy is proven by comparing source and target range by range: drop --sample")
	}
	if opt.Sample {
		err = c.spotCheck(ctx, pool, spec, space, meta, opt.Random, r)
	} else {
		err = c.walkRows(ctx, pool, spec, space, meta, opt, r)
	}
	if err != nil {
		return nil, err
	}
	if r.DonePending, err = c.donePending(ctx, job, meta, r); err != nil {
		return nil, err
	}
	r.judge()
	r.Elapsed = time.Since(began).Round(time.Millisecond).String()
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode verify report: %w", err)
	}
	if err := c.ledger.SaveVerify(ctx, job, b); err != nil {
		return nil, err
	}
	if !r.OK {
		return r, fmt.Errorf("%w: %s", ErrVerifyFailed, r.Problems[0])
	}
	return r, nil
}

// storedJob reads the spec and meta a job was started with.
// StoredSpec is the spec job was last started with, as the workers read
// it: its database_env names the database to verify against.
func (c *Control) StoredSpec(ctx context.Context, job string) (*jobspec.Spec, error) {
	spec, _, err := c.storedJob(ctx, job)
	return spec, err
}

func (c *Control) storedJob(ctx context.Context, job string) (*jobspec.Spec, ledger.Meta, error) {
	raw, err := c.ledger.Spec(ctx, job)
	if err != nil {
		return nil, ledger.Meta{}, err
	}
	spec, err := jobspec.FromJSON(raw)
	if err != nil {
		return nil, ledger.Meta{}, err
	}
	meta, err := c.ledger.Meta(ctx, job)
	if err != nil {
		return nil, ledger.Meta{}, err
	}
	return spec, meta, nil
}

func (r *VerifyReport) judge() {
	if r.DryRun {
		r.Problems = append(r.Problems, "the job was a dry run: nothing was written; clean it up and start it for real")
	}
	if r.RangesFailed > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d ranges failed (see enqueuer status); fix the cause and run enqueuer start again", r.RangesFailed))
	}
	if r.RangesDone < r.RangesTotal {
		r.Problems = append(r.Problems, fmt.Sprintf("%d of %d ranges are not done yet", r.RangesTotal-r.RangesDone, r.RangesTotal))
	}
	if r.Pending > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d rows still match the pending predicate (first keys %v)", r.Pending, r.PendingKeys))
	}
	if r.Failing > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d rows fail the check %q (first keys %v)", r.Failing, r.Check, r.Mismatches))
	}
	if r.Unselected > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d rows fail the check but do not match the pending predicate: the job's statement would not rewrite them, so repair cannot fix them; "+
			"widen pending: to select them (e.g. pending: NOT coalesce(CHECK, false)) and start the job again, or fix them by hand", r.Unselected))
	}
	if r.Missing+r.Differing+r.Extra > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("the copy in %s disagrees with its source: %d rows missing, %d different, %d without a source row (first keys %v)", r.CopyTo, r.Missing, r.Differing, r.Extra, r.DiffKeys))
	}
	if len(r.DonePending) > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("the ledger marks ranges %v done, yet they hold rows found wrong: live writes changed them after their range was done, or a row was corrupted "+
			"(enqueuer repair %s redoes what the job's statement can fix)", r.DonePending, r.Job))
	}
	if r.Sample && len(r.Mismatches) > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d of %d sampled rows are pending or fail the check (keys %v)", len(r.Mismatches), r.Sampled, r.Mismatches))
	}
	r.OK = len(r.Problems) == 0
}

// walkRows reads every row of the job's ranges (verify.WalkRows). It walks
// the slicing's own ranges, which cover the job's key space exactly once;
// ranges split later lie inside them.
func (c *Control) walkRows(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, space keyspace.Space, meta ledger.Meta, opt VerifyOptions, r *VerifyReport) error {
	n := meta.Slicing.Ranges()
	ranges := make([]keyspace.Range, 0, n)
	for i := int64(0); i < n; i++ {
		rg, err := meta.Slicing.Range(i)
		if err != nil {
			return err
		}
		ranges = append(ranges, rg)
	}
	progress := func(p VerifyProgress) {
		if opt.ProgressFunc != nil {
			opt.ProgressFunc(p)
		}
	}
	walk := verify.WalkRows
	if spec.Copy != nil {
		target, closeTarget, err := c.copyTarget(ctx, spec)
		if err != nil {
			return err
		}
		defer closeTarget()
		r.CopyTo = spec.Copy.To
		walk = func(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, space keyspace.Space, ranges []keyspace.Range, opt verify.Options) (*verify.Rows, error) {
			return verify.WalkCopy(ctx, pool, target, spec, space, ranges, opt)
		}
	}
	var last verify.Progress
	rows, err := walk(ctx, pool, spec, space, ranges, verify.Options{
		ChunkRows: opt.ChunkRows,
		PaceFunc: func(ctx context.Context, read int64, took time.Duration) error {
			return c.paceRead(ctx, spec, meta.Queue, read, took, func(held string) { progress(VerifyProgress{Progress: last, Held: held}) })
		},
		ProgressFunc: func(p verify.Progress) { last = p; progress(VerifyProgress{Progress: p}) },
	})
	if err != nil {
		return err
	}
	r.Rows, r.Chunks = rows.Rows, rows.Chunks
	r.Pending, r.PendingKeys = rows.Pending, rows.PendingKeys
	r.Failing, r.Mismatches, r.Unselected = rows.Failing, rows.FailingKeys, rows.Unselected
	r.Changed, r.ChangedKeys = rows.Changed, rows.ChangedKeys
	r.Missing, r.Differing, r.Extra, r.DiffKeys = rows.Missing, rows.Differing, rows.Extra, rows.DiffKeys
	r.Findings = rows.Findings
	return nil
}

// paceRead waits after a reader read rows in took: while the guard's fresh
// decision pauses the job (telling held why, once a second), then as long
// as the job's rate (with the guard's factor and the live overrides) asks,
// or the job's sleep when it has no rate. The guard's pause rules watch
// the same database a verify reads, so verify obeys them as a batch does.
func (c *Control) paceRead(ctx context.Context, spec *jobspec.Spec, queue string, rows int64, took time.Duration, held func(string)) error {
	f := guard.NewFollower()
	for {
		ctl, err := c.ledger.Controls(ctx, spec.Name, queue)
		if err != nil {
			return err
		}
		lim := f.ReaderLimits(spec, ctl, ctl.Now)
		if lim.Paused {
			held(lim.Reason)
			if err := clock.Sleep(ctx, time.Second); err != nil {
				return err
			}
			continue
		}
		if rows == 0 {
			return nil
		}
		return clock.Sleep(ctx, readPause(lim.Rate, lim.Sleep, rows, took))
	}
}

// readPause is how long a reader waits after reading rows in took: as
// long as rate (rows per second) asks, or sleep when there is no rate.
func readPause(rate float64, sleep time.Duration, rows int64, took time.Duration) time.Duration {
	if rate > 0 {
		return time.Duration(float64(rows)/rate*float64(time.Second)) - took
	}
	return sleep
}

// donePending compares the ledger with the database: it returns the
// ranges holding wrong rows that the ledger says are finished, the range
// itself and every half it was split into. A sample (no findings) judges
// the keys it found by the ranges that hold them.
func (c *Control) donePending(ctx context.Context, job string, meta ledger.Meta, r *VerifyReport) ([]int64, error) {
	ids := make([]int64, 0, len(r.Findings))
	for _, f := range r.Findings {
		ids = append(ids, f.Range.ID)
	}
	if r.Sample {
		for _, k := range r.Mismatches {
			if id, ok := meta.Slicing.Containing(k); ok {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	done, err := c.ledger.DoneRanges(ctx, job)
	if err != nil {
		return nil, err
	}
	halves, err := c.ledger.SplitHalves(ctx, job)
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, id := range ids {
		if !slices.ContainsFunc(family(halves, id), func(h int64) bool { return !done[h] }) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// family is range id and every range split from it, at any depth.
func family(halves map[int64][2]int64, id int64) []int64 {
	out := []int64{id}
	for i := 0; i < len(out); i++ {
		if h, ok := halves[out[i]]; ok {
			out = append(out, h[0], h[1])
		}
	}
	return out
}

// spotCheck samples rows of the oldest, newest and a few random ranges and
// tests them (verify.Sample).
func (c *Control) spotCheck(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, space keyspace.Space, meta ledger.Meta, random int, r *VerifyReport) error {
	if random <= 0 {
		random = 5
	}
	ids := []int64{0, meta.Ranges - 1}
	for range random {
		ids = append(ids, rand.Int64N(max(meta.Ranges, 1)))
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	splits, err := c.ledger.Splits(ctx, spec.Name)
	if err != nil {
		return err
	}
	var ranges []keyspace.Range
	for _, id := range ids {
		if rg, err := rangeBounds(meta, splits, id); err == nil {
			ranges = append(ranges, rg)
		}
	}
	s, err := verify.Sample(ctx, pool, spec, space, ranges)
	if err != nil {
		return err
	}
	r.Sampled, r.Mismatches = s.Rows, s.Mismatches
	return nil
}
