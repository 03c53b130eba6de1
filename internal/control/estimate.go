package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/batch"
	"github.com/ebbhq/ebb/internal/clock"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
)

// Estimate is what a job will cost, measured before it starts by a few
// sample batches that are rolled back (plan --estimate).
type Estimate struct {
	Job     string           `json:"job"`
	Samples []EstimateSample `json:"samples"`
	// Rows is how many rows the samples wrote (and rolled back); the per
	// row figures divide the samples' totals by it.
	Rows          int64   `json:"rows"`
	SecondsPerRow float64 `json:"seconds_per_row"`
	WALPerRow     float64 `json:"wal_bytes_per_row"`
	// IndexEntriesPerRow is how many index entries a row's write adds: 0
	// for a HOT update, one per index of the table otherwise.
	IndexEntriesPerRow float64 `json:"index_entries_per_row"`
	// Pending is the planner's estimate of the rows the job will write.
	Pending int64 `json:"pending"`
	// AtRate is the job's duration at its rate (0 without one);
	// OneWorker at one worker's measured speed with the job's sleep,
	// without a rate.
	AtRate    time.Duration `json:"at_rate"`
	OneWorker time.Duration `json:"one_worker"`
	// AtAutoStart and AtAutoMax bound a rate: auto job's duration: at its
	// rate_start, where it begins, and at its rate_max (0 without one).
	AtAutoStart time.Duration `json:"at_auto_start,omitempty"`
	AtAutoMax   time.Duration `json:"at_auto_max,omitempty"`
	// WALTotal is the WAL the whole job will write; WALPerSecond its WAL
	// rate at the job's rate (at one worker's speed without one).
	WALTotal     float64 `json:"wal_bytes_total"`
	WALPerSecond float64 `json:"wal_bytes_per_second"`
	// ServerWALPerSecond is the WAL the server writes now, without the
	// job, and Replicas what each standby replays now: the job's WAL rate
	// on top of the first must stay within what the standbys can replay.
	ServerWALPerSecond float64         `json:"server_wal_bytes_per_second"`
	Replicas           []ReplicaReplay `json:"replicas,omitempty"`
	Notes              []string        `json:"notes,omitempty"`
}

// EstimateSample is one rolled-back sample batch.
type EstimateSample struct {
	Range        keyspace.Range `json:"range"`
	Rows         int64          `json:"rows"`
	Took         time.Duration  `json:"took"`
	WALBytes     int64          `json:"wal_bytes"`
	IndexEntries int64          `json:"index_entries"`
}

// ReplicaReplay is one standby's replay rate over the measuring window.
type ReplicaReplay struct {
	Name           string  `json:"name"`
	BytesPerSecond float64 `json:"bytes_per_second"`
	LagBytes       int64   `json:"lag_bytes"`
}

// ErrReplica refuses an estimate on a standby: it runs writes (rolled
// back) and reads the primary's WAL position.
var ErrReplica = errors.New("the database is a standby (pg_is_in_recovery): run plan --estimate against the primary")

// estimateSamples is how many sample batches an estimate runs, spread over
// the key space: the first, last and middle ranges differ most often
// (new rows are wider, old ones colder).
const estimateSamples = 5

// EstimateCost runs a few of the job's batches, one from each of up to
// five ranges spread over the key space, each in a transaction that is
// rolled back (nothing is changed; the WAL they wrote is discarded with
// them), under the job's timeouts and with the job's sleep (at least a
// second) between them, and measures per row: time, WAL bytes
// (pg_current_wal_insert_lsn deltas) and index entries added
// (pg_stat_xact_user_tables). It then predicts the job's duration and WAL,
// and compares that WAL with what the server and its standbys do now.
// Concurrent traffic's WAL inside a sample's window counts as the job's:
// the figure errs high on a busy server.
func EstimateCost(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec) (*Estimate, error) {
	if spec.Copy.Across() {
		return nil, errors.New("plan --estimate measures jobs that write in their own database; a copy into another database writes its WAL there")
	}
	var standby bool
	if err := pool.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&standby); err != nil {
		return nil, fmt.Errorf("estimate: %w", err)
	}
	if standby {
		return nil, ErrReplica
	}
	space, ranges, err := firstSlicing(ctx, pool, spec)
	if err != nil {
		return nil, err
	}
	e := &Estimate{Job: spec.Name}
	st := batch.Build(spec, space)
	indexes, err := indexCount(ctx, pool, spec)
	if err != nil {
		return nil, err
	}
	pause := max(spec.Sleep.D(), time.Second)
	for i, id := range spreadIDs(len(ranges), estimateSamples) {
		if i > 0 {
			if err := clock.Sleep(ctx, pause); err != nil {
				return nil, err
			}
		}
		s, err := sampleBatch(ctx, pool, spec, space, st, ranges[id], indexes)
		if err != nil {
			return nil, fmt.Errorf("sample batch in range %s: %w", ranges[id], err)
		}
		if s.Rows > 0 {
			e.Samples = append(e.Samples, s)
		}
	}
	if e.Pending, err = estimatePendingAll(ctx, pool, spec, space, ranges); err != nil {
		return nil, err
	}
	e.predict(spec)
	e.ServerWALPerSecond, e.Replicas, err = walNow(ctx, pool)
	return e, err
}

// predict turns the samples into per-row figures and the job's totals.
func (e *Estimate) predict(spec *jobspec.Spec) {
	var took time.Duration
	var wal, idx int64
	for _, s := range e.Samples {
		e.Rows += s.Rows
		took += s.Took
		wal += s.WALBytes
		idx += s.IndexEntries
	}
	if e.Rows == 0 {
		e.Notes = append(e.Notes, "no sample found a pending row: nothing to measure (is the job already done?)")
		return
	}
	rows := float64(e.Rows)
	e.SecondsPerRow = took.Seconds() / rows
	e.WALPerRow = float64(wal) / rows
	e.IndexEntriesPerRow = float64(idx) / rows
	pending := float64(e.Pending)
	e.WALTotal = e.WALPerRow * pending
	size := float64(max(spec.Batch.Size, 1))
	perRow := e.SecondsPerRow + spec.Sleep.D().Seconds()/size
	e.OneWorker = time.Duration(pending * perRow * float64(time.Second))
	e.WALPerSecond = e.WALPerRow / perRow
	if spec.Rate > 0 {
		e.AtRate = time.Duration(pending / spec.Rate * float64(time.Second))
		e.WALPerSecond = e.WALPerRow * spec.Rate
	}
	if spec.AutoRate && spec.RateStart > 0 {
		e.AtAutoStart = time.Duration(pending / spec.RateStart * float64(time.Second))
		if spec.RateMax > 0 {
			e.AtAutoMax = time.Duration(pending / spec.RateMax * float64(time.Second))
			e.WALPerSecond = e.WALPerRow * spec.RateMax
		}
	}
}

// sampleBatch runs the first batch of range r in a transaction it rolls
// back, measuring time, WAL and index entries.
func sampleBatch(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, space keyspace.Space, st batch.Statements, r keyspace.Range, indexes int64) (EstimateSample, error) {
	s := EstimateSample{Range: r}
	args, err := space.Args(r.Lo, r.Hi)
	if err != nil {
		return s, err
	}
	read := st.ReadFrom
	if r.After {
		read = st.ReadAfter
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return s, err
	}
	// The sample must never commit: rollback, detached from ctx so a
	// cancelled estimate still releases its locks.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := batch.SetLocal(ctx, tx, spec); err != nil {
		return s, err
	}
	rows, err := tx.Query(ctx, read, append(args, spec.Batch.Size)...)
	if err != nil {
		return s, err
	}
	keys, err := space.CollectKeys(rows)
	if err != nil || len(keys) == 0 {
		return s, err
	}
	if args, err = space.Args(keys[0], keys[len(keys)-1]); err != nil {
		return s, err
	}
	// The transaction's own counters are read before and after: a pooled
	// backend's earlier, unflushed statistics show in the same view.
	var before string
	var upd0, hot0, ins0 int64
	if err := tx.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text, "+xactCounters, writtenTable(spec)).Scan(&before, &upd0, &hot0, &ins0); err != nil {
		return s, err
	}
	began := time.Now()
	tag, err := tx.Exec(ctx, st.Write, args...)
	if err != nil {
		return s, err
	}
	s.Took, s.Rows = time.Since(began), tag.RowsAffected()
	var upd, hot, ins int64
	if err := tx.QueryRow(ctx, "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $2::pg_lsn)::bigint, "+xactCounters,
		writtenTable(spec), before).Scan(&s.WALBytes, &upd, &hot, &ins); err != nil {
		return s, err
	}
	s.IndexEntries = ((upd - upd0) - (hot - hot0) + (ins - ins0)) * indexes
	return s, tx.Rollback(ctx)
}

// xactCounters reads the updates, HOT updates and inserts of the table
// ($1) counted in this transaction.
const xactCounters = `(SELECT coalesce(sum(n_tup_upd), 0) FROM pg_stat_xact_user_tables WHERE relid = to_regclass($1)),
       (SELECT coalesce(sum(n_tup_hot_upd), 0) FROM pg_stat_xact_user_tables WHERE relid = to_regclass($1)),
       (SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_xact_user_tables WHERE relid = to_regclass($1))`

// writtenTable is the table a job's batches write: a copy's target, else
// the job's own.
func writtenTable(spec *jobspec.Spec) string {
	if spec.Copy != nil {
		return spec.Copy.QuotedTo()
	}
	return spec.QuotedTable()
}

func indexCount(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec) (int64, error) {
	var n int64
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_index WHERE indrelid = to_regclass($1)", writtenTable(spec)).Scan(&n); err != nil {
		return 0, fmt.Errorf("count the indexes of %s: %w", writtenTable(spec), err)
	}
	return n, nil
}

// estimatePendingAll is the planner's pending estimate over ranges.
func estimatePendingAll(ctx context.Context, pool *pgxpool.Pool, spec *jobspec.Spec, space keyspace.Space, ranges []keyspace.Range) (int64, error) {
	if len(ranges) == 0 {
		return 0, nil
	}
	return estimatePending(ctx, pool, spec, space, ranges[0].Lo, ranges[len(ranges)-1].Hi)
}

// walNow measures over two seconds the WAL the server writes and what
// each standby replays.
func walNow(ctx context.Context, pool *pgxpool.Pool) (float64, []ReplicaReplay, error) {
	type point struct {
		lsn      string
		replicas map[string]string
	}
	read := func() (point, error) {
		p := point{replicas: map[string]string{}}
		if err := pool.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&p.lsn); err != nil {
			return p, err
		}
		rows, err := pool.Query(ctx, "SELECT coalesce(application_name, client_addr::text, pid::text), coalesce(replay_lsn, '0/0')::text FROM pg_stat_replication")
		if err != nil {
			return p, err
		}
		var name, lsn string
		_, err = pgx.ForEachRow(rows, []any{&name, &lsn}, func() error {
			p.replicas[name] = lsn
			return nil
		})
		return p, err
	}
	const window = 2 * time.Second
	a, err := read()
	if err != nil {
		return 0, nil, fmt.Errorf("read WAL positions: %w", err)
	}
	if err := clock.Sleep(ctx, window); err != nil {
		return 0, nil, err
	}
	b, err := read()
	if err != nil {
		return 0, nil, fmt.Errorf("read WAL positions: %w", err)
	}
	diff := func(x, y string) (int64, error) {
		var d int64
		err := pool.QueryRow(ctx, "SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::bigint", x, y).Scan(&d)
		return d, err
	}
	server, err := diff(b.lsn, a.lsn)
	if err != nil {
		return 0, nil, err
	}
	var out []ReplicaReplay
	for name, lsn := range b.replicas {
		before, ok := a.replicas[name]
		if !ok {
			continue
		}
		replayed, err1 := diff(lsn, before)
		lag, err2 := diff(b.lsn, lsn)
		if err := errors.Join(err1, err2); err != nil {
			return 0, nil, err
		}
		out = append(out, ReplicaReplay{Name: name, BytesPerSecond: float64(replayed) / window.Seconds(), LagBytes: lag})
	}
	return float64(server) / window.Seconds(), out, nil
}

// spreadIDs is up to n indexes spread evenly over [0, total).
func spreadIDs(total, n int) []int {
	if total <= n {
		out := make([]int, total)
		for i := range out {
			out[i] = i
		}
		return out
	}
	out := make([]int, n)
	for i := range out {
		out[i] = i * (total - 1) / (n - 1)
	}
	return out
}
