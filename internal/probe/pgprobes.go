package probe

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/jobspec"
)

// deadlockWindow is how far back the deadlocks signal counts: the default
// rule reads it as "deadlocks in the last minute".
const deadlockWindow = time.Minute

// Notes for readings that are 0 because of a server setting, not because all
// is well.
const (
	noteTrackIOTimingOff = "track_io_timing is off: read_latency_ms is 0; turn it on with ALTER SYSTEM SET track_io_timing = on; SELECT pg_reload_conf(); (as a superuser)"
	noteArchiveModeOff   = "archive_mode is off: no WAL waits for archiving"
	noteStandbyNoArchive = "this server is a standby with archive_mode = on, which archives nothing (only archive_mode = always does)"
)

// newSignalProbe builds the probe of a built-in signal.
func (s *Sampler) newSignalProbe(signal string) (probe, error) {
	pool := s.cfg.Primary
	if pool == nil && signal != jobspec.SignalCommitP95 {
		return nil, fmt.Errorf("signal %s needs the job's database, but SamplerConfig.Primary is nil", signal)
	}
	switch signal {
	case jobspec.SignalReplicationLagSeconds:
		replicas := s.cfg.Spec.Guard.Replicas
		if len(replicas) > 0 && s.cfg.Replica == nil {
			return nil, fmt.Errorf("signal %s: guard.replicas names %d replicas, but SamplerConfig.Replica is nil so they cannot be reached", signal, len(replicas))
		}
		return &replicationLagProbe{pool: pool, replicas: replicas, connect: s.cfg.Replica}, nil
	case jobspec.SignalReplicationLagBytes:
		return &replicationBytesProbe{pool: pool}, nil
	case jobspec.SignalLockWaits:
		return &activityProbe{signal: signal, pool: pool, sql: lockWaitsSQL}, nil
	case jobspec.SignalActiveConnections:
		return &activityProbe{signal: signal, pool: pool, sql: activeConnectionsSQL}, nil
	case jobspec.SignalLongestTransaction:
		return &activityProbe{signal: signal, pool: pool, sql: longestTransactionSQL}, nil
	case jobspec.SignalDeadlocks:
		return &deadlockProbe{pool: pool, now: s.cfg.Now}, nil
	case jobspec.SignalReadLatencyMS:
		return &readLatencyProbe{pool: pool}, nil
	case jobspec.SignalAutovacuumOnTable:
		schema, name := s.cfg.Spec.TableName()
		if name == "" {
			return nil, fmt.Errorf("signal %s needs the job's table, but the spec names none", signal)
		}
		ident := pgx.Identifier{name}
		if schema != "" {
			ident = pgx.Identifier{schema, name}
		}
		return &autovacuumProbe{pool: pool, table: ident.Sanitize(), name: s.cfg.Spec.Table}, nil
	case jobspec.SignalDeadTuplesRatio:
		return &deadTuplesProbe{pool: pool, table: s.cfg.Spec.QuotedTable(), name: s.cfg.Spec.Table}, nil
	case jobspec.SignalWALArchiveBacklog:
		return &walArchiveProbe{pool: pool}, nil
	case jobspec.SignalCommitP95:
		return &commitProbe{p95: s.cfg.CommitP95}, nil
	case "":
		return nil, errors.New("give exactly one of signal, prometheus or sql")
	}
	return nil, fmt.Errorf("unknown signal %q; built-in signals are %s", signal, strings.Join(jobspec.Signals, ", "))
}

// Sessions of other roles show in pg_stat_activity without their state,
// waits and transaction times unless the reader has pg_read_all_stats. Such a
// role would see no lock waits and no long transactions: a quiet server by
// omission. So every query over other sessions also returns whether the role
// sees them, and the probe fails closed when it does not.
const (
	lockWaitsSQL = `
SELECT current_user, pg_has_role('pg_read_all_stats', 'USAGE'),
       (count(*) FILTER (WHERE wait_event_type = 'Lock'))::float8
FROM pg_stat_activity
WHERE datname = current_database()`

	activeConnectionsSQL = `
SELECT current_user, pg_has_role('pg_read_all_stats', 'USAGE'),
       (count(*) FILTER (WHERE backend_type = 'client backend'))::float8
         / current_setting('max_connections')::float8
FROM pg_stat_activity`

	// Only client backends: an autovacuum worker's long transaction does not
	// hold back the xmin horizon or block the job's writes the way a user's
	// forgotten "idle in transaction" session does. All databases count,
	// since the horizon is cluster-wide.
	longestTransactionSQL = `
SELECT current_user, pg_has_role('pg_read_all_stats', 'USAGE'),
       COALESCE(EXTRACT(EPOCH FROM max(now() - xact_start)), 0)::float8
FROM pg_stat_activity
WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' AND xact_start IS NOT NULL`
)

// activityProbe is a signal computed from pg_stat_activity by one query
// returning (current_user, sees other sessions, value).
type activityProbe struct {
	signal string
	pool   *pgxpool.Pool
	sql    string
}

func (p *activityProbe) sample(ctx context.Context) Reading {
	var (
		user   string
		canSee bool
		v      float64
	)
	if err := p.pool.QueryRow(ctx, p.sql).Scan(&user, &canSee, &v); err != nil {
		return Reading{Err: fmt.Errorf("signal %s: read pg_stat_activity: %w", p.signal, err)}
	}
	if !canSee {
		return Reading{Err: hiddenStatsError(p.signal, user, "other sessions in pg_stat_activity")}
	}
	return Reading{Value: v}
}

func hiddenStatsError(signal, user, what string) error {
	role := pgx.Identifier{user}.Sanitize()
	return fmt.Errorf("signal %s: role %s cannot see the details of %s, so the signal would read low; GRANT pg_monitor TO %s (or pg_read_all_stats)", signal, user, what, role)
}

// replicationLagProbe is the replay lag in seconds: the primary's view of
// every standby connected to it, plus each replica named in the job, which
// also covers a standby that has lost its connection to the primary.
type replicationLagProbe struct {
	pool     *pgxpool.Pool
	replicas []string
	connect  func(ctx context.Context, env string) (*pgxpool.Pool, error)
}

// pg_stat_replication shows only the pid of each WAL sender to a role without
// pg_read_all_stats; state is then NULL and so is replay_lag, which would
// read as "no lag". replay_lag itself goes NULL once a standby has caught up
// and the primary is idle, which is 0.
const replicationLagSQL = `
SELECT current_user, count(*) FILTER (WHERE state IS NULL),
       COALESCE(EXTRACT(EPOCH FROM max(replay_lag)), 0)::float8
FROM pg_stat_replication`

// On a replica, now() minus the last replayed commit's timestamp is the lag
// while the primary writes. It keeps growing when the primary goes quiet,
// which would keep a paused job paused forever, so a replica whose WAL
// receiver is streaming and has replayed all it received counts as 0. A
// disconnected receiver proves nothing and falls back to the timestamp.
const replicaLagSQL = `
SELECT pg_is_in_recovery(), current_user, pg_has_role('pg_read_all_stats', 'USAGE'),
       EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'),
       COALESCE(pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn(), false),
       EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8`

func (p *replicationLagProbe) sample(ctx context.Context) Reading {
	const signal = jobspec.SignalReplicationLagSeconds
	var (
		user   string
		hidden int64
		lag    float64
	)
	if err := p.pool.QueryRow(ctx, replicationLagSQL).Scan(&user, &hidden, &lag); err != nil {
		return Reading{Err: fmt.Errorf("signal %s: read pg_stat_replication: %w", signal, err)}
	}
	if hidden > 0 {
		return Reading{Err: hiddenStatsError(signal, user, "pg_stat_replication")}
	}
	for _, env := range p.replicas {
		v, err := p.replicaLag(ctx, env)
		if err != nil {
			return Reading{Err: fmt.Errorf("signal %s: replica %s: %w", signal, env, err)}
		}
		lag = max(lag, v)
	}
	return Reading{Value: lag}
}

func (p *replicationLagProbe) replicaLag(ctx context.Context, env string) (float64, error) {
	pool, err := p.connect(ctx, env)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	if pool == nil {
		return 0, fmt.Errorf("no connection; set %s to the replica's DSN", env)
	}
	var (
		inRecovery, canSee, streaming, caughtUp bool
		user                                    string
		lag                                     *float64
	)
	if err := pool.QueryRow(ctx, replicaLagSQL).Scan(&inRecovery, &user, &canSee, &streaming, &caughtUp, &lag); err != nil {
		return 0, fmt.Errorf("read replay position: %w", err)
	}
	switch {
	case !inRecovery:
		return 0, fmt.Errorf("server is not in recovery: it was promoted, or %s points at a primary; point it at a streaming replica", env)
	case !canSee:
		return 0, hiddenStatsError(jobspec.SignalReplicationLagSeconds, user, "pg_stat_wal_receiver on the replica")
	case streaming && caughtUp:
		return 0, nil
	case lag == nil:
		return 0, errors.New("no transaction replayed yet and replay is not caught up with the received WAL")
	}
	// Clocks of primary and replica may differ slightly; a negative lag
	// is a caught-up replica.
	return max(*lag, 0), nil
}

// replicationBytesProbe is how much WAL the furthest-behind standby has not
// replayed. On a standby itself it is the received-but-unreplayed WAL.
type replicationBytesProbe struct {
	pool *pgxpool.Pool
}

// pg_current_wal_lsn() raises an error during recovery, hence the CASE.
const replicationBytesSQL = `
SELECT pg_is_in_recovery(), current_user,
       (SELECT count(*) FILTER (WHERE state IS NULL) FROM pg_stat_replication),
       CASE WHEN pg_is_in_recovery()
            THEN pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
            ELSE (SELECT COALESCE(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)
                  FROM pg_stat_replication)
       END::float8`

func (p *replicationBytesProbe) sample(ctx context.Context) Reading {
	const signal = jobspec.SignalReplicationLagBytes
	var (
		inRecovery bool
		user       string
		hidden     int64
		bytes      *float64
	)
	if err := p.pool.QueryRow(ctx, replicationBytesSQL).Scan(&inRecovery, &user, &hidden, &bytes); err != nil {
		return Reading{Err: fmt.Errorf("signal %s: read WAL positions: %w", signal, err)}
	}
	switch {
	case !inRecovery && hidden > 0:
		return Reading{Err: hiddenStatsError(signal, user, "pg_stat_replication")}
	case bytes == nil:
		return Reading{Err: fmt.Errorf("signal %s: this server is a standby without a WAL receiver, so its distance from the primary is unknown", signal)}
	}
	return Reading{Value: max(*bytes, 0)}
}

// deadlockProbe counts deadlocks in the current database over the trailing
// window, from the cumulative pg_stat_database.deadlocks counter.
type deadlockProbe struct {
	pool    *pgxpool.Pool
	now     func() time.Time
	samples counterWindow
}

func (p *deadlockProbe) sample(ctx context.Context) Reading {
	var n int64
	err := p.pool.QueryRow(ctx, `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`).Scan(&n)
	if err != nil {
		return Reading{Err: fmt.Errorf("signal %s: read pg_stat_database: %w", jobspec.SignalDeadlocks, err)}
	}
	return Reading{Value: float64(p.samples.observe(p.now(), n, deadlockWindow))}
}

// counterWindow turns a cumulative counter into its increase over a trailing
// window.
type counterWindow struct {
	samples []counterSample
}

type counterSample struct {
	at time.Time
	n  int64
}

// observe records counter value n at now and returns its increase since the
// start of the window: the newest sample at least window old, else the
// oldest kept. Taking the sample just outside the window rather than the
// first inside it means an event is counted for at least a full window even
// when samples are sparse. The first sample knows no history and reads 0. A
// counter that went down was reset (pg_stat_reset), and everything it counts
// now happened since the last sample, so it is all inside the window.
func (w *counterWindow) observe(now time.Time, n int64, window time.Duration) int64 {
	if k := len(w.samples); k > 0 && n < w.samples[k-1].n {
		w.samples = []counterSample{{at: now, n: 0}}
	}
	w.samples = append(w.samples, counterSample{at: now, n: n})
	start := now.Add(-window)
	i := 0
	for i+1 < len(w.samples) && !w.samples[i+1].at.After(start) {
		i++
	}
	w.samples = w.samples[i:]
	return n - w.samples[0].n
}

// readLatencyProbe is the mean time of a block read from outside shared
// buffers, in milliseconds, over the interval since the previous sample.
type readLatencyProbe struct {
	pool *pgxpool.Pool
	prev ioCounters
}

type ioCounters struct {
	readTimeMS float64
	blocks     int64
	valid      bool
}

func (p *readLatencyProbe) sample(ctx context.Context) Reading {
	var (
		on  bool
		cur ioCounters
	)
	err := p.pool.QueryRow(ctx, `
SELECT current_setting('track_io_timing')::bool, blk_read_time, blks_read
FROM pg_stat_database WHERE datname = current_database()`).Scan(&on, &cur.readTimeMS, &cur.blocks)
	if err != nil {
		return Reading{Err: fmt.Errorf("signal %s: read pg_stat_database: %w", jobspec.SignalReadLatencyMS, err)}
	}
	cur.valid = true
	// Kept even while timing is off, so the first interval after it is
	// turned on is not diluted by all the untimed reads since start.
	base := p.prev
	p.prev = cur
	if !on {
		return Reading{Value: 0, Note: noteTrackIOTimingOff}
	}
	if !base.valid || cur.blocks < base.blocks || cur.readTimeMS < base.readTimeMS {
		// First sample, or the counters were reset: the cumulative ratio
		// is the best estimate there is.
		base = ioCounters{}
	}
	blocks := cur.blocks - base.blocks
	if blocks == 0 {
		return Reading{Value: 0}
	}
	return Reading{Value: (cur.readTimeMS - base.readTimeMS) / float64(blocks)}
}

// autovacuumProbe is 1 while an autovacuum worker processes the job's table.
type autovacuumProbe struct {
	pool *pgxpool.Pool
	// table is the quoted name, resolved with to_regclass.
	table string
	// name is the table as the job file spells it, for errors.
	name string
}

// pg_stat_progress_vacuum names the table by OID but misses an
// ANALYZE-only run, so the worker's activity text ("autovacuum: VACUUM
// ANALYZE schema.table") is matched too. The text carries the names
// unquoted; LIKE wildcards in them are escaped, and the name must end the
// text or be followed by a space so that table t does not match t2.
const autovacuumSQL = `
WITH t AS (
  SELECT c.oid,
         replace(replace(replace(n.nspname || '.' || c.relname, '\', '\\'), '%', '\%'), '_', '\_') AS pat
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.oid = to_regclass($1)
)
SELECT current_user, pg_has_role('pg_read_all_stats', 'USAGE'), EXISTS (SELECT 1 FROM t),
       EXISTS (SELECT 1
               FROM pg_stat_progress_vacuum v
               JOIN pg_stat_activity a ON a.pid = v.pid
               JOIN t ON t.oid = v.relid
               WHERE v.datname = current_database() AND a.backend_type = 'autovacuum worker')
       OR EXISTS (SELECT 1
                  FROM pg_stat_activity a, t
                  WHERE a.datname = current_database() AND a.backend_type = 'autovacuum worker'
                    AND (a.query LIKE ('autovacuum: % ' || t.pat)
                         OR a.query LIKE ('autovacuum: % ' || t.pat || ' %')))`

func (p *autovacuumProbe) sample(ctx context.Context) Reading {
	const signal = jobspec.SignalAutovacuumOnTable
	var (
		user                string
		canSee, found, busy bool
	)
	if err := p.pool.QueryRow(ctx, autovacuumSQL, p.table).Scan(&user, &canSee, &found, &busy); err != nil {
		return Reading{Err: fmt.Errorf("signal %s: read pg_stat_progress_vacuum: %w", signal, err)}
	}
	switch {
	case !found:
		return Reading{Err: fmt.Errorf("signal %s: table %s not found (check the job's table and the search_path of its database user)", signal, p.name)}
	case !canSee:
		// Autovacuum workers belong to no role, so only
		// pg_read_all_stats shows them at all.
		return Reading{Err: hiddenStatsError(signal, user, "autovacuum workers in pg_stat_activity")}
	case busy:
		return Reading{Value: 1}
	}
	return Reading{Value: 0}
}

// deadTuplesProbe is the share of the job's table that is dead tuples,
// from the statistics collector: what a delete leaves behind until vacuum
// removes it.
type deadTuplesProbe struct {
	pool        *pgxpool.Pool
	table, name string
}

const deadTuplesSQL = `
SELECT to_regclass($1) IS NOT NULL,
       coalesce((SELECT n_dead_tup::float8 / greatest(n_live_tup + n_dead_tup, 1)
                 FROM pg_stat_all_tables WHERE relid = to_regclass($1)), 0)`

func (p *deadTuplesProbe) sample(ctx context.Context) Reading {
	var found bool
	var v float64
	if err := p.pool.QueryRow(ctx, deadTuplesSQL, p.table).Scan(&found, &v); err != nil {
		return Reading{Err: fmt.Errorf("signal %s: read pg_stat_all_tables: %w", jobspec.SignalDeadTuplesRatio, err)}
	}
	if !found {
		return Reading{Err: fmt.Errorf("signal %s: table %s not found (check the job's table and the search_path of its database user)", jobspec.SignalDeadTuplesRatio, p.name)}
	}
	return Reading{Value: v}
}

// walArchiveProbe estimates how many completed WAL segments wait for
// archive_command: a failing archiver keeps every segment on disk until the
// disk fills, and a backfill writes WAL fast.
type walArchiveProbe struct {
	pool *pgxpool.Pool
}

const walArchiveSQL = `
SELECT current_setting('archive_mode'), pg_is_in_recovery(), a.last_archived_wal,
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END,
       (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size')
FROM pg_stat_archiver a`

func (p *walArchiveProbe) sample(ctx context.Context) Reading {
	const signal = jobspec.SignalWALArchiveBacklog
	var (
		mode                 string
		inRecovery           bool
		lastArchived, curWAL *string
		segSize              int64
	)
	if err := p.pool.QueryRow(ctx, walArchiveSQL).Scan(&mode, &inRecovery, &lastArchived, &curWAL, &segSize); err != nil {
		return Reading{Err: fmt.Errorf("signal %s: read pg_stat_archiver: %w", signal, err)}
	}
	switch {
	case mode == "off":
		return Reading{Value: 0, Note: noteArchiveModeOff}
	case inRecovery && mode != "always":
		return Reading{Value: 0, Note: noteStandbyNoArchive}
	}
	if lastArchived != nil && curWAL != nil {
		last, ok1 := walSegNo(*lastArchived, segSize)
		cur, ok2 := walSegNo(*curWAL, segSize)
		if ok1 && ok2 {
			// The current segment is still being written and cannot be
			// archived yet; only the completed ones in between wait.
			return Reading{Value: float64(max(cur-last-1, 0))}
		}
	}
	// Nothing archived since the stats began, a history file last, or a
	// standby: count the segments marked ready instead.
	var ready int64
	err := p.pool.QueryRow(ctx, `SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'`).Scan(&ready)
	if err != nil {
		return Reading{Err: fmt.Errorf("signal %s: no archived segment to compare with, and pg_wal/archive_status cannot be listed (GRANT pg_monitor to the job's role): %w", signal, err)}
	}
	return Reading{Value: float64(ready)}
}

// walSegNo is the segment number of a WAL file name
// (TTTTTTTTXXXXXXXXYYYYYYYY: timeline, high and low parts) or of a .partial
// or .backup file named after one. Segment numbers run on across timelines.
func walSegNo(name string, segSize int64) (int64, bool) {
	if len(name) < 24 || segSize <= 0 {
		return 0, false
	}
	hi, err1 := strconv.ParseUint(name[8:16], 16, 32)
	lo, err2 := strconv.ParseUint(name[16:24], 16, 32)
	if _, err := strconv.ParseUint(name[0:8], 16, 32); err != nil || err1 != nil || err2 != nil {
		return 0, false
	}
	perID := int64(0x100000000) / segSize
	return int64(hi)*perID + int64(lo), true
}

// commitProbe is the fleet's own p95 commit time, measured by the caller.
type commitProbe struct {
	p95 func(ctx context.Context) (float64, error)
}

func (p *commitProbe) sample(ctx context.Context) Reading {
	const signal = jobspec.SignalCommitP95
	if p.p95 == nil {
		return Reading{Err: fmt.Errorf("signal %s: no source of commit times (SamplerConfig.CommitP95 is nil)", signal)}
	}
	v, err := p.p95(ctx)
	if err != nil {
		return Reading{Err: fmt.Errorf("signal %s: %w", signal, err)}
	}
	return Reading{Value: v}
}
