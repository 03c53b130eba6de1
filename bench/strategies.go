package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/ebbhq/ebb/internal/child"
	"github.com/ebbhq/ebb/internal/clock"
	"github.com/ebbhq/ebb/internal/ledger"
)

// A strategy fills the table one way. SQL strategies are what people write
// by hand (and what migration tools do); ebb strategies run bin/worker
// processes and bin/enqueuer against the run's own Redis.

// strategy is one way of filling the table.
type strategy struct {
	Name string
	// Live runs the strategy under live traffic; the ceilings run without.
	Live bool
	// Note says what the strategy is, for the report.
	Note string
	run  func(ctx context.Context, r *run) (fillStats, error)
}

// fillStats is what a strategy reports besides the rows it filled, which
// the harness counts itself.
type fillStats struct {
	// Batches, RedisCmds and WorkerRSS are ebb's: committed batches, Redis
	// commands the whole fleet issued, and the largest worker's peak RSS.
	Batches   int64
	RedisCmds int64
	WorkerRSS int64
	// Finished is when ebb stamped the job's last range done (Redis's
	// clock, the same host's): the end of the fill, finer than the poll.
	Finished time.Time
	// History is the job's guard history (rate: auto's steps), newest
	// first, as enqueuer status --history prints it.
	History json.RawMessage
}

// run is what strategies share: the servers, the binaries, the budget.
type run struct {
	pool     *pgxpool.Pool
	dsn      string
	redisURL string
	rdb      *redis.Client
	worker   string
	enqueuer string
	dir      string
	rows     int64
	budget   time.Duration
	p95URL   string
	progress func(format string, args ...any)
	seq      int
	// commandstats prints each ebb strategy's Redis commands by name.
	commandstats bool
	// baselineP95 is the live p95 (ms) the baseline measured: the
	// rate: auto strategies' objectives are multiples of it.
	baselineP95 float64
}

// sqlChunks fills by key range, n keys a commit, sleeping between commits:
// the hand-written loop.
func sqlChunks(n int64, sleep time.Duration) func(context.Context, *run) (fillStats, error) {
	return func(ctx context.Context, r *run) (fillStats, error) {
		q := "UPDATE " + table + " SET " + fillSet + " WHERE id BETWEEN $1 AND $2 AND " + pendingSQL
		deadline := time.Now().Add(r.budget)
		for lo := int64(1); lo <= r.rows && time.Now().Before(deadline); lo += n {
			if _, err := r.pool.Exec(ctx, q, lo, lo+n-1); err != nil {
				return fillStats{}, fmt.Errorf("chunk at %d: %w", lo, err)
			}
			if sleep > 0 {
				if err := clock.Sleep(ctx, sleep); err != nil {
					return fillStats{}, err
				}
			}
		}
		return fillStats{}, nil
	}
}

// bigUpdate is one UPDATE of every pending row.
func bigUpdate(ctx context.Context, r *run) (fillStats, error) {
	_, err := r.pool.Exec(ctx, "UPDATE "+table+" SET "+fillSet+" WHERE "+pendingSQL)
	return fillStats{}, err
}

// keysetLoop is a migration tool's loop: the next n pending keys above the
// last one, updated in one statement, committed, at once again.
func keysetLoop(n int) func(context.Context, *run) (fillStats, error) {
	return func(ctx context.Context, r *run) (fillStats, error) {
		q := `WITH batch AS (SELECT id FROM ` + table + ` WHERE id > $1 AND ` + pendingSQL + ` ORDER BY id LIMIT $2),
u AS (UPDATE ` + table + ` o SET ` + fillSet + ` FROM batch WHERE o.id = batch.id RETURNING o.id)
SELECT count(*), coalesce(max(id), 0) FROM u`
		deadline := time.Now().Add(r.budget)
		var last int64
		for time.Now().Before(deadline) {
			var count, top int64
			if err := r.pool.QueryRow(ctx, q, last, n).Scan(&count, &top); err != nil {
				return fillStats{}, fmt.Errorf("keyset batch after %d: %w", last, err)
			}
			if count == 0 {
				return fillStats{}, nil
			}
			last = top
		}
		return fillStats{}, nil
	}
}

// keysetProcedure is the same loop as one server-side procedure: no client
// round trip between batches.
const keysetProcedure = `CREATE OR REPLACE PROCEDURE bench_keyset(n int, deadline timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
  last bigint := 0;
  got bigint;
  top bigint;
BEGIN
  LOOP
    WITH batch AS (SELECT id FROM ` + table + ` WHERE id > last AND ` + pendingSQL + ` ORDER BY id LIMIT n),
    u AS (UPDATE ` + table + ` o SET ` + fillSet + ` FROM batch WHERE o.id = batch.id RETURNING o.id)
    SELECT count(*), coalesce(max(id), 0) INTO got, top FROM u;
    EXIT WHEN got = 0 OR clock_timestamp() > deadline;
    last := top;
    COMMIT;
  END LOOP;
  COMMIT;
END $$`

func keysetProc(n int) func(context.Context, *run) (fillStats, error) {
	return func(ctx context.Context, r *run) (fillStats, error) {
		if _, err := r.pool.Exec(ctx, keysetProcedure); err != nil {
			return fillStats{}, fmt.Errorf("create the keyset procedure: %w", err)
		}
		_, err := r.pool.Exec(ctx, "CALL bench_keyset($1, $2)", n, time.Now().Add(r.budget))
		return fillStats{}, err
	}
}

// parallelUpdates runs n UPDATEs at once over disjoint key ranges.
func parallelUpdates(n int) func(context.Context, *run) (fillStats, error) {
	return func(ctx context.Context, r *run) (fillStats, error) {
		q := "UPDATE " + table + " SET " + fillSet + " WHERE id BETWEEN $1 AND $2 AND " + pendingSQL
		span := (r.rows + int64(n) - 1) / int64(n)
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				lo := int64(i)*span + 1
				_, errs[i] = r.pool.Exec(ctx, q, lo, lo+span-1)
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return fillStats{}, err
			}
		}
		return fillStats{}, nil
	}
}

// ebbJob runs the job file body (without its name) with workers worker
// processes of concurrency ranges each, until the job is done or the
// budget is spent.
func ebbJob(body func(*run) string, workers, concurrency int) func(context.Context, *run) (fillStats, error) {
	return func(ctx context.Context, r *run) (fillStats, error) {
		r.seq++
		name := fmt.Sprintf("bench-%d", r.seq)
		queue := name
		path := filepath.Join(r.dir, name+".yaml")
		job := fmt.Sprintf("name: %s\ntable: %s\nkey: id\npending: %s\nset: %s\n%s", name, table, pendingSQL, fillSet, strings.ReplaceAll(body(r), "P95_URL", r.p95URL))
		if err := os.WriteFile(path, []byte(job), 0o600); err != nil {
			return fillStats{}, fmt.Errorf("write job file: %w", err)
		}
		env := child.SetEnv(child.SetEnv(child.SetEnv(os.Environ(), "DATABASE_URL", r.dsn), "REDIS_URL", r.redisURL), "EBB_PREFIX", "bench:")
		// Read before the total, so this INFO is not among the commands
		// counted.
		statsBefore, _ := commandStats(ctx, r.rdb)
		before, err := commandCalls(ctx, r.rdb)
		if err != nil {
			return fillStats{}, err
		}
		var procs []*child.Process
		defer func() {
			for _, p := range procs {
				_ = p.Stop(30 * time.Second)
			}
		}()
		for i := range workers {
			p, err := child.Start(fmt.Sprintf("%s-worker-%d", name, i+1), r.worker,
				[]string{"-queue", queue, "-concurrency", strconv.Itoa(concurrency), "-metrics-addr", ""}, env,
				filepath.Join(r.dir, fmt.Sprintf("%s-worker-%d.log", name, i+1)))
			if err != nil {
				return fillStats{}, err
			}
			procs = append(procs, p)
		}
		if out, err := child.Run(ctx, 2*time.Minute, r.enqueuer, []string{"start", "-job", path, "-queue", queue}, env); err != nil {
			return fillStats{}, fmt.Errorf("%w\n%s", err, out)
		}
		deadline := time.Now().Add(r.budget)
		led := ledger.New(r.rdb, "bench:")
		// Done is read in-process every 100 ms (a range set's size, three
		// commands), so the fill's end is seen within 100 ms; the CLI's
		// status, which reads much more, only every 5 s for a failure.
		var finished time.Time
		polls, statusPolls := 0, 0
		var st jobStatus
		for i := 1; ; i++ {
			if err := clock.Sleep(ctx, 100*time.Millisecond); err != nil {
				return fillStats{}, err
			}
			prog, err := led.Progress(ctx, name)
			if err != nil {
				return fillStats{}, err
			}
			polls++
			if prog.Finished {
				finished = time.Now()
				break
			}
			if time.Now().After(deadline) {
				break
			}
			if i%50 == 0 {
				if st, err = status(ctx, r, name, env); err != nil {
					return fillStats{}, err
				}
				statusPolls++
				if st.State == "failed" {
					break
				}
			}
			for _, p := range procs {
				if done, err := p.Exited(); done {
					return fillStats{}, fmt.Errorf("%s exited: %v\n%s", p.Name(), err, child.Tail(p.LogPath(), 20))
				}
			}
		}
		after, err := commandCalls(ctx, r.rdb)
		if err != nil {
			return fillStats{}, err
		}
		if r.commandstats {
			statsAfter, _ := commandStats(ctx, r.rdb)
			var parts []string
			for cmd, n := range statsAfter {
				if d := n - statsBefore[cmd]; d > 0 {
					parts = append(parts, fmt.Sprintf("%s=%d", cmd, d))
				}
			}
			slices.Sort(parts)
			r.progress("%s: Redis commands by name (the harness's polls included): %s", name, strings.Join(parts, " "))
		}
		if st, err = status(ctx, r, name, env); err != nil {
			return fillStats{}, err
		}
		if st.State == "failed" {
			return fillStats{}, fmt.Errorf("job %s failed; see %s", name, r.dir)
		}
		var rss int64
		for _, p := range procs {
			rss = max(rss, peakRSS(p.Pid()))
		}
		// The harness's own polls are not the fleet's cost: one more of
		// each, measured alone, is taken off per poll.
		history, err := child.Run(ctx, 30*time.Second, r.enqueuer, []string{"status", name, "--history", "200", "--json"}, env)
		if err != nil {
			return fillStats{}, err
		}
		perProgress, err := cost(ctx, r, func() error { _, err := led.Progress(ctx, name); return err })
		if err != nil {
			return fillStats{}, err
		}
		perStatus, err := cost(ctx, r, func() error { _, err := status(ctx, r, name, env); return err })
		if err != nil {
			return fillStats{}, err
		}
		own := 1 + int64(polls)*perProgress + int64(statusPolls)*perStatus
		out := fillStats{Batches: st.Batches, RedisCmds: after - before - own, WorkerRSS: rss, History: firstJSON(history), Finished: finished}
		return out, nil
	}
}

// jobStatus is the part of enqueuer status --json the harness reads.
type jobStatus struct {
	State   string `json:"state"`
	Batches int64  `json:"batches"`
}

func status(ctx context.Context, r *run, job string, env []string) (jobStatus, error) {
	var st jobStatus
	out, err := child.Run(ctx, 30*time.Second, r.enqueuer, []string{"status", job, "--json"}, env)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(firstJSON(out), &st); err != nil {
		return st, fmt.Errorf("read status of %s: %w", job, err)
	}
	return st, nil
}

// cost is the Redis commands one call of f costs, from INFO commandstats.
func cost(ctx context.Context, r *run, f func() error) (int64, error) {
	before, err := commandCalls(ctx, r.rdb)
	if err != nil {
		return 0, err
	}
	if err := f(); err != nil {
		return 0, err
	}
	after, err := commandCalls(ctx, r.rdb)
	if err != nil {
		return 0, err
	}
	return after - before - 1, nil
}

// firstJSON is the first JSON document a command printed: child.Run puts
// the command's log lines (stderr) after its stdout.
func firstJSON(b []byte) []byte {
	i := strings.IndexAny(string(b), "[{")
	if i < 0 {
		return nil
	}
	var v json.RawMessage
	if err := json.NewDecoder(strings.NewReader(string(b[i:]))).Decode(&v); err != nil {
		return nil
	}
	return v
}

// peakRSS is a process's peak resident set (VmHWM) in bytes, 0 if unknown.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// commandCalls sums the calls of every command in INFO commandstats.
func commandCalls(ctx context.Context, rdb *redis.Client) (int64, error) {
	byCmd, err := commandStats(ctx, rdb)
	var total int64
	for _, n := range byCmd {
		total += n
	}
	return total, err
}

// commandStats is INFO commandstats' calls by command.
func commandStats(ctx context.Context, rdb *redis.Client) (map[string]int64, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("read INFO commandstats: %w", err)
	}
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(line, ":calls=")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.SplitN(rest, ",", 2)[0], 10, 64)
		out[strings.TrimPrefix(name, "cmdstat_")] = n
	}
	return out, nil
}
