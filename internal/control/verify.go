package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/clock"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
	"github.com/ebbhq/ebb/internal/ledger"
)

// ErrVerifyFailed means verify found rows left pending, rows that fail the
// job's check, or ranges not done.
var ErrVerifyFailed = errors.New("verify found problems")

// VerifyReport is what verify found; it is stored with the job.
type VerifyReport struct {
	Job   string    `json:"job"`
	Table string    `json:"table"`
	At    time.Time `json:"at"`
	OK    bool      `json:"ok"`
	// Problems says in words what is wrong; empty when OK.
	Problems     []string `json:"problems,omitempty"`
	DryRun       bool     `json:"dry_run,omitempty"`
	RangesTotal  int64    `json:"ranges_total"`
	RangesDone   int64    `json:"ranges_done"`
	RangesFailed int64    `json:"ranges_failed"`
	// LedgerRows is what the workers recorded as written; EstimatedRows
	// the planner's pending count at the first start.
	LedgerRows    int64 `json:"ledger_rows"`
	EstimatedRows int64 `json:"estimated_rows"`
	// Pending rows still match the pending predicate within the job's range,
	// counted chunk by chunk; PendingKeys are the first few of them.
	Pending     int64          `json:"pending"`
	PendingKeys []keyspace.Key `json:"pending_keys,omitempty"`
	// DonePending are ranges the ledger marks done although some of
	// PendingKeys lie in them: where the ledger and the database disagree.
	DonePending []int64 `json:"done_pending,omitempty"`
	Chunks      int     `json:"chunks"`
	// Check is the job's check expression; Sampled rows were tested with
	// it and Mismatches failed it (NULL counts as a failure).
	Check      string         `json:"check,omitempty"`
	Sampled    int            `json:"sampled"`
	Mismatches []keyspace.Key `json:"mismatches,omitempty"`
	Elapsed    string         `json:"elapsed"`
}

// VerifyOptions tune a verify run.
type VerifyOptions struct {
	// Random is how many random ranges are spot-checked besides the oldest
	// and newest; default 5.
	Random int
	// ChunkKeys is the key span of one pending count; default 10 × the
	// job's read_batch.
	ChunkKeys int64
}

const keysShown = 10

// Verify proves a job finished correctly: it counts rows still pending in
// key-range chunks paced like the job (never one long scan), compares the
// ledger with the database, and spot-checks sampled rows — the first and
// last keys of the oldest, newest and some random ranges, plus random keys
// in them — against the job's check expression. The report is stored with
// the job; a report with problems comes back with ErrVerifyFailed.
func (c *Control) Verify(ctx context.Context, pool *pgxpool.Pool, job string, opt VerifyOptions) (*VerifyReport, error) {
	st, err := c.Status(ctx, job)
	if err != nil {
		return nil, err
	}
	raw, err := c.ledger.Spec(ctx, job)
	if err != nil {
		return nil, err
	}
	spec, err := jobspec.FromJSON(raw)
	if err != nil {
		return nil, err
	}
	meta, err := c.ledger.Meta(ctx, job)
	if err != nil {
		return nil, err
	}
	began := time.Now()
	r := &VerifyReport{Job: job, Table: spec.Table, At: began.UTC(), DryRun: meta.DryRun, Check: spec.Check,
		RangesTotal: st.RangesTotal, RangesDone: st.RangesDone, RangesFailed: st.RangesFailed,
		LedgerRows: st.RowsDone, EstimatedRows: meta.Estimate}
	if opt.Random <= 0 {
		opt.Random = 5
	}
	if opt.ChunkKeys <= 0 {
		opt.ChunkKeys = int64(spec.ReadBatch) * 10
	}
	space, err := keyspace.Open(ctx, pool, spec.QuotedTable(), spec.Key...)
	if err != nil {
		return nil, err
	}
	if err := c.countPending(ctx, pool, spec, space, meta, opt.ChunkKeys, r); err != nil {
		return nil, err
	}
	if r.DonePending, err = c.donePending(ctx, job, meta, r.PendingKeys); err != nil {
		return nil, err
	}
	if spec.Check != "" {
		if err := c.spotCheck(ctx, pool, spec, space, meta, opt.Random, r); err != nil {
			return nil, err
		}
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
	if len(r.DonePending) > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("the ledger marks ranges %v done, yet they hold pending rows: live writes made rows pending again, or the job's write leaves rows matching its pending predicate; "+
			"to redo a range, remove its done mark and cursor (see internal/ledger/README.md) and run enqueuer start again", r.DonePending))
	}
	if len(r.Mismatches) > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d of %d sampled rows fail the check %q (keys %v)", len(r.Mismatches), r.Sampled, r.Check, r.Mismatches))
	}
	r.OK = len(r.Problems) == 0
}

// countPending counts pending rows chunk by chunk, sleeping between chunks
// so verify reads no faster than the job wrote. The first few pending keys
// are read only while fewer than keysShown are known.
func (c *Control) countPending(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, space keyspace.Space, meta ledger.Meta, span int64, r *VerifyReport) error {
	table, cols := spec.QuotedTable(), space.Columns()
	parts, err := meta.Slicing.Reslice(span)
	if err != nil {
		return err
	}
	n := parts.Ranges()
	for i := int64(0); i < n; i++ {
		ch, err := parts.Range(i)
		if err != nil {
			return err
		}
		args, err := space.Args(ch.Lo, ch.Hi)
		if err != nil {
			return err
		}
		// An ordered key's chunk past the first excludes its lower bound.
		in := space.Of(ch, 1)
		countQ := fmt.Sprintf("SELECT count(*) FROM %s WHERE %s AND (%s)", table, in, spec.Pending)
		keysQ := fmt.Sprintf("SELECT %s FROM %s WHERE %s AND (%s) ORDER BY %s LIMIT %d", space.Select(), table, in, spec.Pending, cols, keysShown)
		var count int64
		var keys []keyspace.Key
		began := time.Now()
		if err := readOnly(ctx, pool, spec, func(tx pgx.Tx) error {
			if err := tx.QueryRow(ctx, countQ, args...).Scan(&count); err != nil || count == 0 || len(r.PendingKeys) >= keysShown {
				return err
			}
			rows, err := tx.Query(ctx, keysQ, args...)
			if err != nil {
				return err
			}
			keys, err = space.CollectKeys(rows)
			return err
		}); err != nil {
			return fmt.Errorf("count pending rows of %s in [%s,%s]: %w", spec.Table, ch.Lo, ch.Hi, err)
		}
		r.Chunks++
		r.Pending += count
		r.PendingKeys = append(r.PendingKeys, keys[:min(len(keys), keysShown-len(r.PendingKeys))]...)
		if i == n-1 {
			break // nothing left to pace
		}
		if err := clock.Sleep(ctx, pace(spec, span, time.Since(began))); err != nil {
			return err
		}
	}
	return nil
}

// donePending compares the ledger with the database: it returns the ranges
// marked done that hold any of the pending keys found. A key whose range was
// split is judged by the halves that cover it, since a split parent is
// marked done once its halves are queued.
func (c *Control) donePending(ctx context.Context, job string, meta ledger.Meta, keys []keyspace.Key) ([]int64, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	done, err := c.ledger.DoneRanges(ctx, job)
	if err != nil {
		return nil, err
	}
	splits, err := c.ledger.Splits(ctx, job)
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, k := range keys {
		id, ok := meta.Slicing.Containing(k)
		if !ok {
			continue
		}
		holders := []int64{id}
		for sid, b := range splits {
			if meta.Slicing.Holds(b, k) {
				holders = append(holders, sid)
			}
		}
		if !slices.ContainsFunc(holders, func(h int64) bool { return !done[h] }) {
			out = append(out, slices.Max(holders))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// pace is the pause after reading keys keys in took: at most the job's
// rate in keys per second, else the job's sleep.
func pace(spec *jobspec.Spec, keys int64, took time.Duration) time.Duration {
	if spec.Rate > 0 {
		return time.Duration(float64(keys)/spec.Rate*float64(time.Second)) - took
	}
	return spec.Sleep.D()
}

// spotCheck samples rows and tests them with the job's check expression.
func (c *Control) spotCheck(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, space keyspace.Space, meta ledger.Meta, random int, r *VerifyReport) error {
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
	var sample []keyspace.Key
	seen := map[string]bool{}
	for _, id := range ids {
		rg, err := rangeBounds(meta, splits, id)
		if err != nil {
			continue
		}
		keys, err := sampleRange(ctx, pool, spec, space, rg)
		if err != nil {
			return fmt.Errorf("sample rows of %s range %d: %w", spec.Table, id, err)
		}
		for _, k := range keys {
			if !seen[k.Encode()] {
				seen[k.Encode()] = true
				sample = append(sample, k)
			}
		}
	}
	r.Sampled = len(sample)
	list, err := space.Array(sample)
	if err != nil {
		return err
	}
	check := fmt.Sprintf("SELECT %s FROM %s WHERE %s AND ((%s) IS NOT TRUE) ORDER BY %s", space.Select(), spec.QuotedTable(), space.AnyOf(1), spec.Check, space.Columns())
	return readOnly(ctx, pool, spec, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, check, list...)
		if err != nil {
			return fmt.Errorf("run check %q: %w", spec.Check, err)
		}
		r.Mismatches, err = space.CollectKeys(rows)
		return err
	})
}

// sampledRandoms is how many random keys of a range are spot-checked
// besides its first and last two.
const sampledRandoms = 3

// sampleRange reads the keys of rows verify spot-checks in range rg: its
// first two, its last two, and the first row at or after each of a few
// random keys of the range, in one round trip.
func sampleRange(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, space keyspace.Space, rg keyspace.Range) ([]keyspace.Key, error) {
	randoms, err := space.Sample(rg, sampledRandoms)
	if err != nil {
		return nil, err
	}
	table, sel, cols := spec.QuotedTable(), space.Select(), space.Columns()
	parts := []string{
		fmt.Sprintf("(SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT 2)", sel, table, space.Of(rg, 1), cols),
		fmt.Sprintf("(SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT 2)", sel, table, space.Of(rg, 1), space.Descending()),
	}
	bounds := []keyspace.Key{rg.Lo, rg.Hi}
	for _, k := range randoms {
		parts = append(parts, fmt.Sprintf("(SELECT %s FROM %s WHERE %s ORDER BY %s LIMIT 1)", sel, table, space.From(len(bounds)*space.Width()+1), cols))
		bounds = append(bounds, k, rg.Hi)
	}
	args, err := space.Args(bounds...)
	if err != nil {
		return nil, err
	}
	var keys []keyspace.Key
	err = readOnly(ctx, pool, spec, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, strings.Join(parts, " UNION "), args...)
		if err != nil {
			return err
		}
		keys, err = space.CollectKeys(rows)
		return err
	})
	return keys, err
}

// readOnly runs fn in a read-only transaction bounded by the job's
// statement timeout, so verify can never write or hold a long snapshot.
func readOnly(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, fn func(pgx.Tx) error) error {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// As in a batch: a misestimated row value must not turn a chunk's
	// count into a scan of the whole table.
	if _, err := tx.Exec(ctx, "SELECT set_config('statement_timeout', $1, true), set_config('enable_seqscan', 'off', true)", fmt.Sprintf("%dms", spec.Timeouts.Statement.D().Milliseconds())); err != nil {
		return err
	}
	return fn(tx)
}
