package verify

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
)

// Options tune a walk. The zero value walks in chunks of the job's
// read_batch rows, unpaced, silently.
type Options struct {
	// ChunkRows is how many rows one chunk reads, each chunk in its own
	// short transaction; 0 is the job's read_batch.
	ChunkRows int
	// PaceFunc is called after every chunk but the last with the rows it
	// read and how long that took; it sleeps as long as the job's rate,
	// sleep and guard ask, or returns ctx's error. Nil does not pace.
	PaceFunc func(ctx context.Context, rows int64, took time.Duration) error
	// CountOnly counts pending and failing rows per range without reading
	// their keys or reading them again: what a dry run of a job would
	// touch (plan --count), where a second look has nothing to prove.
	CountOnly bool
	// ProgressFunc is called after every range with the walk so far.
	ProgressFunc func(Progress)
	// beforeRecheck runs between a chunk's first look at its wrong rows
	// (their keys) and the second: a test changes a row there, as live
	// traffic would.
	beforeRecheck func(wrong []keyspace.Key)
}

// Progress is how far a walk has got.
type Progress struct {
	RangesDone, Ranges int
	Rows               int64
	// Wrong is the count of rows found wrong so far.
	Wrong int64
}

// Finding is what a walk found wrong in one range: counts, and the first
// few keys of the rows at fault.
type Finding struct {
	Range keyspace.Range `json:"range"`
	// Pending rows still match the job's pending predicate.
	Pending int64 `json:"pending"`
	// Failing rows fail the job's check (false or NULL).
	Failing int64 `json:"failing"`
	// Unselected rows fail the check although the pending predicate does
	// not select them: the job's statement would not rewrite them, so
	// redoing the range cannot repair them.
	Unselected int64 `json:"unselected,omitempty"`
	// Missing, Differing and Extra count a copy's rows absent from the
	// target, different there, and in the target without a source row.
	Missing   int64          `json:"missing,omitempty"`
	Differing int64          `json:"differing,omitempty"`
	Extra     int64          `json:"extra,omitempty"`
	Keys      []keyspace.Key `json:"keys"`
}

// Rows is the outcome of a walk over every row of a job's ranges.
type Rows struct {
	Rows   int64 `json:"rows"`
	Chunks int   `json:"chunks"`
	// Wrong counts the rows found wrong, each once; Pending, Failing and
	// Unselected sum the findings (a row may be pending and failing).
	Wrong      int64 `json:"wrong"`
	Pending    int64 `json:"pending"`
	Failing    int64 `json:"failing"`
	Unselected int64 `json:"unselected,omitempty"`
	// Missing, Differing and Extra sum a copy's findings.
	Missing   int64 `json:"missing,omitempty"`
	Differing int64 `json:"differing,omitempty"`
	Extra     int64 `json:"extra,omitempty"`
	// PendingKeys and FailingKeys are the first few keys of each kind;
	// DiffKeys those of a copy's rows that differ, are missing or extra.
	DiffKeys    []keyspace.Key `json:"diff_keys,omitempty"`
	PendingKeys []keyspace.Key `json:"pending_keys,omitempty"`
	FailingKeys []keyspace.Key `json:"failing_keys,omitempty"`
	// Changed rows were wrong at first look and right (or gone) at a
	// second, in a new transaction: live traffic wrote them while verify
	// ran. They are reported, not failed.
	Changed     int64          `json:"changed"`
	ChangedKeys []keyspace.Key `json:"changed_keys,omitempty"`
	Findings    []Finding      `json:"findings,omitempty"`
}

// KeysShown caps the keys a report lists per range and per kind.
const KeysShown = 10

// WalkRows reads every row of ranges (a partition of the job's key space,
// in key order) in chunks of opt.ChunkRows rows along the key's index,
// each chunk in its own short REPEATABLE READ, READ ONLY transaction, and
// counts the rows that still match spec.Pending or fail spec.Check (NULL
// is a failure). A row found wrong is read again in a new transaction
// before it counts, so a row that live traffic fixed in between is
// reported as changed, not as wrong. Nothing is written.
func WalkRows(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, space keyspace.Space, ranges []keyspace.Range, opt Options) (*Rows, error) {
	return walk(ctx, pool, spec, space, ranges, opt, nil)
}

// walk walks ranges chunk by chunk, testing rows (cmp nil) or comparing a
// copy's source with its target.
func walk(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, space keyspace.Space, ranges []keyspace.Range, opt Options, cmp *copyCompare) (*Rows, error) {
	if opt.ChunkRows <= 0 {
		opt.ChunkRows = spec.ReadBatch
	}
	w := &rowWalk{pool: pool, spec: spec, space: space, q: rowQueries(spec, space), cmp: cmp, opt: opt, out: &Rows{}}
	if cmp != nil {
		cmp.w = w
	}
	for i, r := range ranges {
		if err := w.walkRange(ctx, r); err != nil {
			return nil, err
		}
		if opt.ProgressFunc != nil {
			opt.ProgressFunc(Progress{RangesDone: i + 1, Ranges: len(ranges), Rows: w.out.Rows, Wrong: w.out.Wrong})
		}
		if i < len(ranges)-1 {
			if err := w.pace(ctx); err != nil {
				return nil, err
			}
		}
	}
	return w.out, nil
}

type rowWalk struct {
	pool  *pgxpool.Pool
	spec  *jobspec.Spec
	space keyspace.Space
	q     queries
	// cmp compares a copy's source with its target instead of testing
	// the rows themselves (WalkCopy).
	cmp *copyCompare
	opt Options
	out *Rows
	// read and began are what the chunks since the last pace read and
	// when they started.
	read  int64
	began time.Time
}

// queries are the statements of a row walk; see rowQueries.
type queries struct {
	// end finds a chunk's last key: the row ChunkRows-1 rows past its
	// lower bound, or none when the range ends sooner. Two bound forms:
	// from a range's inclusive lower bound and after a chunk's last key.
	endFrom, endAfter string
	// count counts a chunk's rows, pending rows and failing rows.
	countFrom, countAfter string
	// wrong lists a chunk's wrong rows with why; again re-reads a list of
	// keys the same way.
	wrongFrom, wrongAfter, again string
}

// rowQueries writes a walk's statements. The pending and check
// expressions are the operator's SQL, as in the job's own statements.
func rowQueries(spec *jobspec.Spec, space keyspace.Space) queries {
	table, sel, cols, w := spec.QuotedTable(), space.Select(), space.Columns(), space.Width()
	pending := fmt.Sprintf("coalesce((%s), false)", spec.Pending)
	failing := "false"
	if spec.Check != "" {
		failing = fmt.Sprintf("NOT coalesce((%s), false)", spec.Check)
	}
	end := func(bound string) string {
		return fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY %s OFFSET $%d LIMIT 1", sel, table, bound, cols, 2*w+1)
	}
	count := func(bound string) string {
		return fmt.Sprintf("SELECT count(*), count(*) FILTER (WHERE %s), count(*) FILTER (WHERE %s) FROM %s WHERE %s", pending, failing, table, bound)
	}
	// Wrong rows' keys are read as one text per column, whatever the
	// shape: a key is each column's PostgreSQL text. The aliases keep
	// ORDER BY on the columns, not on their text.
	texts := make([]string, w)
	for i, c := range space.Names() {
		texts[i] = fmt.Sprintf("%s::text AS \"ebb wrong key %d\"", pgx.Identifier{c}.Sanitize(), i)
	}
	keyText := strings.Join(texts, ", ")
	wrong := func(bound string) string {
		return fmt.Sprintf("SELECT %s, %s, %s FROM %s WHERE %s AND (%s OR %s) ORDER BY %s", keyText, pending, failing, table, bound, pending, failing, cols)
	}
	return queries{
		endFrom: end(space.From(1)), endAfter: end(space.After(1)),
		countFrom: count(space.From(1)), countAfter: count(space.After(1)),
		wrongFrom: wrong(space.From(1)), wrongAfter: wrong(space.After(1)),
		again: fmt.Sprintf("SELECT %s, %s, %s FROM %s WHERE %s", keyText, pending, failing, table, space.AnyOf(1)),
	}
}

// walkRange walks one range chunk by chunk: each chunk ends at the row
// ChunkRows-1 past its start (or at the range's end), so a chunk reads a
// bounded number of rows however sparse or skewed the key is.
func (w *rowWalk) walkRange(ctx context.Context, r keyspace.Range) error {
	f := Finding{Range: r}
	lower, after := r.Lo, r.After
	for {
		if w.began.IsZero() {
			w.began = time.Now()
		}
		look, again := w.chunk, w.recheck
		if w.cmp != nil {
			look, again = w.cmp.chunk, w.cmp.recheck
		}
		c, err := look(ctx, lower, r.Hi, after)
		if err != nil {
			return fmt.Errorf("verify rows of %s in %s: %w", w.spec.Table, r, err)
		}
		if err := again(ctx, &c); err != nil {
			return fmt.Errorf("read again wrong rows of %s in %s: %w", w.spec.Table, r, err)
		}
		w.out.Chunks++
		w.out.Rows += c.rows
		w.read += c.rows
		if w.opt.CountOnly {
			f.Pending, f.Failing = f.Pending+c.pending, f.Failing+c.failing
			w.out.Pending, w.out.Failing = w.out.Pending+c.pending, w.out.Failing+c.failing
		} else {
			w.tally(&f, c)
		}
		if c.last {
			break
		}
		if err := w.pace(ctx); err != nil {
			return err
		}
		lower, after = c.end, true
	}
	if f.Pending+f.Failing+f.Missing+f.Differing+f.Extra > 0 {
		w.out.Findings = append(w.out.Findings, f)
	}
	return nil
}

// chunkResult is one chunk's counts and its wrong rows.
type chunkResult struct {
	end   keyspace.Key
	last  bool
	rows  int64
	wrong []wrongRow
	// pending and failing are the first look's counts.
	pending, failing int64
	// lower and after are where the chunk starts, for a second look.
	lower keyspace.Key
	after bool
}

type wrongRow struct {
	key              keyspace.Key
	pending, failing bool
	// A copy's row is missing from the target, differs there, or is in
	// the target without a source row to copy it from.
	missing, differing, extra bool
}

// chunk reads one chunk from lower (exclusive when after) in one
// transaction, so its end, its counts and its wrong rows agree.
func (w *rowWalk) chunk(ctx context.Context, lower, hi keyspace.Key, after bool) (chunkResult, error) {
	endQ, countQ, wrongQ := w.q.endFrom, w.q.countFrom, w.q.wrongFrom
	if after {
		endQ, countQ, wrongQ = w.q.endAfter, w.q.countAfter, w.q.wrongAfter
	}
	var c chunkResult
	err := ReadOnly(ctx, w.pool, w.spec, func(tx pgx.Tx) error {
		c = chunkResult{}
		var err error
		if c.end, c.last, err = w.chunkEnd(ctx, tx, endQ, lower, hi); err != nil {
			return err
		}
		args, err := w.space.Args(lower, c.end)
		if err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, countQ, args...).Scan(&c.rows, &c.pending, &c.failing); err != nil {
			return err
		}
		if c.pending+c.failing == 0 || w.opt.CountOnly {
			return nil
		}
		c.wrong, err = w.readWrong(ctx, tx, wrongQ, args)
		return err
	})
	return c, err
}

// chunkEnd finds where a chunk from lower ends: the row ChunkRows-1 rows
// past it, or hi (last) when the range ends sooner.
func (w *rowWalk) chunkEnd(ctx context.Context, tx pgx.Tx, endQ string, lower, hi keyspace.Key) (end keyspace.Key, last bool, err error) {
	args, err := w.space.Args(lower, hi)
	if err != nil {
		return keyspace.Key{}, false, err
	}
	rows, err := tx.Query(ctx, endQ, append(args, w.opt.ChunkRows-1)...)
	if err != nil {
		return keyspace.Key{}, false, err
	}
	ends, err := w.space.CollectKeys(rows)
	if err != nil || len(ends) == 0 {
		return hi, true, err
	}
	return ends[0], false, nil
}

// recheck reads the chunk's wrong rows again in a new transaction and
// keeps those still wrong; the others were changed during verify.
func (w *rowWalk) recheck(ctx context.Context, c *chunkResult) error {
	if len(c.wrong) == 0 {
		return nil
	}
	keys := make([]keyspace.Key, len(c.wrong))
	for i, r := range c.wrong {
		keys[i] = r.key
	}
	if w.opt.beforeRecheck != nil {
		w.opt.beforeRecheck(keys)
	}
	args, err := w.space.Array(keys)
	if err != nil {
		return err
	}
	var again []wrongRow
	if err := ReadOnly(ctx, w.pool, w.spec, func(tx pgx.Tx) error {
		var err error
		again, err = w.readWrong(ctx, tx, w.q.again, args)
		return err
	}); err != nil {
		return err
	}
	w.keepStill(c, again)
	return nil
}

// keepStill keeps the chunk's wrong rows that are wrong again at the
// second look (again), as they are now; the others count as changed
// during verify.
func (w *rowWalk) keepStill(c *chunkResult, again []wrongRow) {
	still := make(map[string]wrongRow, len(again))
	for _, r := range again {
		if r.pending || r.failing || r.missing || r.differing || r.extra {
			still[r.key.Encode()] = r
		}
	}
	kept := c.wrong[:0]
	for _, r := range c.wrong {
		if now, ok := still[r.key.Encode()]; ok {
			kept = append(kept, now)
			continue
		}
		w.out.Changed++
		if len(w.out.ChangedKeys) < KeysShown {
			w.out.ChangedKeys = append(w.out.ChangedKeys, r.key)
		}
	}
	c.wrong = kept
}

// readWrong runs a statement that selects (key…, pending, failing).
func (w *rowWalk) readWrong(ctx context.Context, tx pgx.Tx, sql string, args []any) ([]wrongRow, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return collectKeyed(rows, w.space.Width(), func(r *wrongRow) (*keyspace.Key, []any) {
		return &r.key, []any{&r.pending, &r.failing}
	})
}

// collectKeyed reads rows that select a key's columns as text, then more
// columns, into Ts: fields names where a T keeps the key and the rest.
func collectKeyed[T any](rows pgx.Rows, width int, fields func(*T) (*keyspace.Key, []any)) ([]T, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) {
		var v T
		key, rest := fields(&v)
		vals := make([]string, width)
		dest := make([]any, 0, width+len(rest))
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		err := row.Scan(append(dest, rest...)...)
		*key = keyspace.NewKey(vals...)
		return v, err
	})
}

// tally adds a chunk's rows still wrong to the range's finding and the
// walk's totals.
func (w *rowWalk) tally(f *Finding, c chunkResult) {
	w.out.Wrong += int64(len(c.wrong))
	for _, r := range c.wrong {
		if r.pending {
			f.Pending++
			w.out.Pending++
			if len(w.out.PendingKeys) < KeysShown {
				w.out.PendingKeys = append(w.out.PendingKeys, r.key)
			}
		}
		if r.failing {
			f.Failing++
			w.out.Failing++
			if len(w.out.FailingKeys) < KeysShown {
				w.out.FailingKeys = append(w.out.FailingKeys, r.key)
			}
			if !r.pending {
				f.Unselected++
				w.out.Unselected++
			}
		}
		if r.missing || r.differing || r.extra {
			f.Missing, f.Differing, f.Extra = f.Missing+b2i(r.missing), f.Differing+b2i(r.differing), f.Extra+b2i(r.extra)
			w.out.Missing, w.out.Differing, w.out.Extra = w.out.Missing+b2i(r.missing), w.out.Differing+b2i(r.differing), w.out.Extra+b2i(r.extra)
			if len(w.out.DiffKeys) < KeysShown {
				w.out.DiffKeys = append(w.out.DiffKeys, r.key)
			}
		}
		if len(f.Keys) < KeysShown {
			f.Keys = append(f.Keys, r.key)
		}
	}
}

// pace hands what was read since the last pace to PaceFunc.
func (w *rowWalk) pace(ctx context.Context) error {
	if w.opt.PaceFunc == nil || w.began.IsZero() {
		return nil
	}
	read, took := w.read, time.Since(w.began)
	w.read, w.began = 0, time.Time{}
	return w.opt.PaceFunc(ctx, read, took)
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
