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
	// and the second: a test changes a row there, as live traffic would.
	beforeRecheck func()
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
	Unselected int64          `json:"unselected,omitempty"`
	Keys       []keyspace.Key `json:"keys"`
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
	// PendingKeys and FailingKeys are the first few keys of each kind.
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
	if opt.ChunkRows <= 0 {
		opt.ChunkRows = spec.ReadBatch
	}
	w := &rowWalk{pool: pool, spec: spec, space: space, q: rowQueries(spec, space), opt: opt, out: &Rows{}}
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
	opt   Options
	out   *Rows
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
		c, err := w.chunk(ctx, lower, r.Hi, after)
		if err != nil {
			return fmt.Errorf("verify rows of %s in %s: %w", w.spec.Table, r, err)
		}
		if err := w.recheck(ctx, &c); err != nil {
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
	if f.Pending+f.Failing > 0 {
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
}

type wrongRow struct {
	key              keyspace.Key
	pending, failing bool
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
		args, err := w.space.Args(lower, hi)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, endQ, append(args, w.opt.ChunkRows-1)...)
		if err != nil {
			return err
		}
		ends, err := w.space.CollectKeys(rows)
		if err != nil {
			return err
		}
		c.end, c.last = hi, len(ends) == 0
		if !c.last {
			c.end = ends[0]
		}
		if args, err = w.space.Args(lower, c.end); err != nil {
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

// recheck reads the chunk's wrong rows again in a new transaction and
// keeps those still wrong; the others were changed during verify.
func (w *rowWalk) recheck(ctx context.Context, c *chunkResult) error {
	if len(c.wrong) == 0 {
		return nil
	}
	if w.opt.beforeRecheck != nil {
		w.opt.beforeRecheck()
	}
	keys := make([]keyspace.Key, len(c.wrong))
	for i, r := range c.wrong {
		keys[i] = r.key
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
	still := make(map[string]wrongRow, len(again))
	for _, r := range again {
		if r.pending || r.failing {
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
	return nil
}

// readWrong runs a statement that selects (key…, pending, failing).
func (w *rowWalk) readWrong(ctx context.Context, tx pgx.Tx, sql string, args []any) ([]wrongRow, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	n := w.space.Width()
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (wrongRow, error) {
		vals := make([]string, n)
		var r wrongRow
		dest := make([]any, 0, n+2)
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		err := row.Scan(append(dest, &r.pending, &r.failing)...)
		r.key = keyspace.NewKey(vals...)
		return r, err
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
