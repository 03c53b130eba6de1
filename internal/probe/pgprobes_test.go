package probe

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/jobspec"
)

func TestLockWaitsCountsBlockedSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := ebbtest.Schema(t)
	tbl := db.Table("accounts")
	db.Exec(t, "CREATE TABLE "+tbl+" (id int PRIMARY KEY, v int)")
	db.Exec(t, "INSERT INTO "+tbl+" VALUES (1, 0)")
	s := sampler(t, db, SamplerConfig{}, signal(jobspec.SignalLockWaits))

	holder, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	_, err = holder.Exec(ctx, "UPDATE "+tbl+" SET v = 1 WHERE id = 1")
	require.NoError(t, err)

	waiter, err := db.Pool.Acquire(ctx)
	require.NoError(t, err)
	waiterPID := waiter.Conn().PgConn().PID()
	result := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		_, err := waiter.Exec(ctx, "UPDATE "+tbl+" SET v = 2 WHERE id = 1")
		result <- err
	}()
	t.Cleanup(func() {
		_ = holder.Rollback(ctx)
		<-finished
		waiter.Release()
	})

	ebbtest.Eventually(t, "the second update to wait for the row lock", func() bool {
		return db.Count(t, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'", waiterPID) == 1
	})
	r := readOne(t, s, jobspec.SignalLockWaits)
	require.NoError(t, r.Err)
	require.GreaterOrEqual(t, r.Value, 1.0, "the blocked update is a lock wait")

	require.NoError(t, holder.Rollback(ctx))
	require.NoError(t, <-result)
}

func TestActiveConnections(t *testing.T) {
	t.Parallel()
	db := ebbtest.Schema(t)
	r := readOne(t, sampler(t, db, SamplerConfig{}, signal(jobspec.SignalActiveConnections)), jobspec.SignalActiveConnections)
	require.NoError(t, r.Err)
	require.Greater(t, r.Value, 0.0, "at least the probe's own connection")
	require.LessOrEqual(t, r.Value, 1.0)
}

func TestLongestTransactionGrows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := ebbtest.Schema(t)
	s := sampler(t, db, SamplerConfig{}, signal(jobspec.SignalLongestTransaction))

	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	// xact_start is set by BEGIN, so the transaction is at least this old
	// at any later moment.
	_, err = tx.Exec(ctx, "SELECT 1")
	require.NoError(t, err)
	opened := time.Now()

	first := readOne(t, s, jobspec.SignalLongestTransaction)
	require.NoError(t, first.Err)
	ebbtest.Eventually(t, "the open transaction to be over a second old", func() bool {
		age := time.Since(opened).Seconds()
		r := readOne(t, s, jobspec.SignalLongestTransaction)
		require.NoError(t, r.Err)
		require.GreaterOrEqual(t, r.Value, age-0.01, "the reading covers the open transaction")
		return r.Value >= 1 && r.Value > first.Value
	})
}

// The deadlock tests are not parallel: deadlocks counts the whole database,
// so the provoked deadlock would show in the quiet test's window.

func TestDeadlocksQuiet(t *testing.T) {
	db := ebbtest.Schema(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := sampler(t, db, SamplerConfig{Now: func() time.Time { return now }}, signal(jobspec.SignalDeadlocks))
	for i := range 3 {
		r := readOne(t, s, jobspec.SignalDeadlocks)
		require.NoError(t, r.Err)
		require.Zero(t, r.Value, "sample %d", i)
	}
}

func TestDeadlocksCountsProvokedDeadlock(t *testing.T) {
	ctx := context.Background()
	db := ebbtest.Schema(t)
	tbl := db.Table("pair")
	db.Exec(t, "CREATE TABLE "+tbl+" (id int PRIMARY KEY, v int)")
	db.Exec(t, "INSERT INTO "+tbl+" VALUES (1, 0), (2, 0)")
	// A frozen clock keeps the provoked deadlock inside the window however
	// long the statistics take to arrive.
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := sampler(t, db, SamplerConfig{Now: func() time.Time { return now }}, signal(jobspec.SignalDeadlocks))
	r := readOne(t, s, jobspec.SignalDeadlocks)
	require.NoError(t, r.Err)
	require.Zero(t, r.Value)

	a, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Rollback(ctx) })
	b, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Rollback(ctx) })
	_, err = a.Exec(ctx, "UPDATE "+tbl+" SET v = 1 WHERE id = 1")
	require.NoError(t, err)
	_, err = b.Exec(ctx, "UPDATE "+tbl+" SET v = 1 WHERE id = 2")
	require.NoError(t, err)

	aPID := a.Conn().PgConn().PID()
	aDone := make(chan error, 1)
	go func() {
		_, err := a.Exec(ctx, "UPDATE "+tbl+" SET v = 2 WHERE id = 2")
		aDone <- err
	}()
	ebbtest.Eventually(t, "the first transaction to wait for the second", func() bool {
		return db.Count(t, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'", aPID) == 1
	})
	_, errB := b.Exec(ctx, "UPDATE "+tbl+" SET v = 2 WHERE id = 1")
	if errB == nil {
		// b won; a was the victim, or is still waiting for b.
		require.NoError(t, b.Rollback(ctx))
	}
	errA := <-aDone
	require.True(t, isDeadlock(errA) || isDeadlock(errB), "one side is a deadlock victim: a=%v b=%v", errA, errB)
	require.NoError(t, a.Rollback(ctx))
	_ = b.Rollback(ctx)

	ebbtest.Eventually(t, "the deadlock to show in the signal", func() bool {
		r := readOne(t, s, jobspec.SignalDeadlocks)
		require.NoError(t, r.Err)
		return r.Value >= 1
	})
}

func isDeadlock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "40P01"
}

func TestReadLatency(t *testing.T) {
	t.Parallel()
	db := ebbtest.Schema(t)
	var on bool
	require.NoError(t, db.Pool.QueryRow(context.Background(), "SELECT current_setting('track_io_timing')::bool").Scan(&on))
	s := sampler(t, db, SamplerConfig{}, signal(jobspec.SignalReadLatencyMS))
	for range 2 { // the first reading is cumulative, the second an interval
		r := readOne(t, s, jobspec.SignalReadLatencyMS)
		require.NoError(t, r.Err)
		if on {
			require.GreaterOrEqual(t, r.Value, 0.0)
			require.Empty(t, r.Note)
			continue
		}
		require.Zero(t, r.Value)
		require.Contains(t, r.Note, "track_io_timing is off")
		require.Contains(t, r.Note, "ALTER SYSTEM SET track_io_timing = on")
		require.Contains(t, r.Note, "pg_reload_conf()")
	}
}

func TestAutovacuumOnTable(t *testing.T) {
	t.Parallel()
	db := ebbtest.Schema(t)
	// Autovacuum off for this table only, so no worker can start on it
	// during the test.
	db.Exec(t, "CREATE TABLE "+db.Table("quiet")+" (id int PRIMARY KEY) WITH (autovacuum_enabled = false)")

	spec := &jobspec.Spec{Table: db.Schema + ".quiet", Guard: jobspec.Guard{PrometheusEnv: "PROMETHEUS_URL"}}
	r := readOne(t, sampler(t, db, SamplerConfig{Spec: spec}, signal(jobspec.SignalAutovacuumOnTable)), jobspec.SignalAutovacuumOnTable)
	require.NoError(t, r.Err)
	require.Zero(t, r.Value)

	missing := &jobspec.Spec{Table: db.Schema + ".absent", Guard: jobspec.Guard{PrometheusEnv: "PROMETHEUS_URL"}}
	r = readOne(t, sampler(t, db, SamplerConfig{Spec: missing}, signal(jobspec.SignalAutovacuumOnTable)), jobspec.SignalAutovacuumOnTable)
	require.ErrorContains(t, r.Err, "not found")
	require.ErrorContains(t, r.Err, jobspec.SignalAutovacuumOnTable)
}

// TestDeadTuplesRatio: the delete job's default rule reads the share of
// the table's tuples that are dead, which a chunked delete leaves behind.
func TestDeadTuplesRatio(t *testing.T) {
	t.Parallel()
	db := ebbtest.Schema(t)
	// Autovacuum off for this table only, so the dead tuples stay.
	db.Exec(t, "CREATE TABLE "+db.Table("old")+" (id int PRIMARY KEY) WITH (autovacuum_enabled = false)")
	db.Exec(t, "INSERT INTO "+db.Table("old")+" SELECT generate_series(1, 1000)")
	db.Exec(t, "DELETE FROM "+db.Table("old")+" WHERE id <= 400; SELECT pg_stat_force_next_flush()")
	spec := &jobspec.Spec{Table: db.Schema + ".old", Guard: jobspec.Guard{PrometheusEnv: "PROMETHEUS_URL"}}
	s := sampler(t, db, SamplerConfig{Spec: spec}, signal(jobspec.SignalDeadTuplesRatio))
	ebbtest.Eventually(t, "400 of 1,000 tuples dead", func() bool {
		r := readOne(t, s, jobspec.SignalDeadTuplesRatio)
		require.NoError(t, r.Err)
		return r.Value > 0.39 && r.Value < 0.41
	})

	missing := &jobspec.Spec{Table: db.Schema + ".absent", Guard: jobspec.Guard{PrometheusEnv: "PROMETHEUS_URL"}}
	r := readOne(t, sampler(t, db, SamplerConfig{Spec: missing}, signal(jobspec.SignalDeadTuplesRatio)), jobspec.SignalDeadTuplesRatio)
	require.ErrorContains(t, r.Err, "not found")
}

func TestReplicationSignals(t *testing.T) {
	t.Parallel()
	db := ebbtest.Schema(t)
	s := sampler(t, db, SamplerConfig{}, signal(jobspec.SignalReplicationLagSeconds), signal(jobspec.SignalReplicationLagBytes))
	got := s.Sample(context.Background())
	for _, name := range []string{jobspec.SignalReplicationLagSeconds, jobspec.SignalReplicationLagBytes} {
		require.NoError(t, got[name].Err, name)
		require.GreaterOrEqual(t, got[name].Value, 0.0, name)
	}
}

func TestReplicaFailsClosed(t *testing.T) {
	t.Parallel()
	db := ebbtest.Schema(t)
	tests := []struct {
		name    string
		connect func(context.Context, string) (*pgxpool.Pool, error)
		wantErr string
	}{
		{
			name:    "replica is a primary",
			connect: func(context.Context, string) (*pgxpool.Pool, error) { return db.Pool, nil },
			wantErr: "not in recovery",
		},
		{
			name:    "replica unreachable",
			connect: func(context.Context, string) (*pgxpool.Pool, error) { return nil, errors.New("dial tcp: refused") },
			wantErr: "connect: dial tcp: refused",
		},
		{
			name:    "no pool",
			connect: func(context.Context, string) (*pgxpool.Pool, error) { return nil, nil },
			wantErr: "set REPLICA_URL",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec := &jobspec.Spec{Guard: jobspec.Guard{Replicas: []string{"REPLICA_URL"}, PrometheusEnv: "PROMETHEUS_URL"}}
			s := sampler(t, db, SamplerConfig{Spec: spec, Replica: tc.connect}, signal(jobspec.SignalReplicationLagSeconds))
			r := readOne(t, s, jobspec.SignalReplicationLagSeconds)
			require.ErrorContains(t, r.Err, "replica REPLICA_URL")
			require.ErrorContains(t, r.Err, tc.wantErr)
		})
	}
}

func TestWALArchiveBacklog(t *testing.T) {
	t.Parallel()
	db := ebbtest.Schema(t)
	var mode string
	require.NoError(t, db.Pool.QueryRow(context.Background(), "SELECT current_setting('archive_mode')").Scan(&mode))
	r := readOne(t, sampler(t, db, SamplerConfig{}, signal(jobspec.SignalWALArchiveBacklog)), jobspec.SignalWALArchiveBacklog)
	require.NoError(t, r.Err)
	if mode == "off" {
		require.Zero(t, r.Value)
		require.Contains(t, r.Note, "archive_mode is off")
		return
	}
	require.GreaterOrEqual(t, r.Value, 0.0)
}

// A role without pg_read_all_stats sees other sessions without their waits
// or transaction times: the probes must say so rather than read 0.
func TestActivitySignalsFailClosedWithoutStatsPrivilege(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := ebbtest.Schema(t)
	role := "ebbtest_probe_" + ebbtest.Suffix()
	password := ebbtest.Suffix() // hex: safe inside the literal
	db.Exec(t, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" LOGIN PASSWORD '"+password+"'")
	t.Cleanup(func() {
		if _, err := db.Pool.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize()); err != nil {
			t.Errorf("drop role %s: %v", role, err)
		}
	})
	cfg, err := pgxpool.ParseConfig(ebbtest.DatabaseURL())
	require.NoError(t, err)
	cfg.ConnConfig.User, cfg.ConnConfig.Password = role, password
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	s := sampler(t, db, SamplerConfig{Primary: pool},
		signal(jobspec.SignalLockWaits), signal(jobspec.SignalLongestTransaction),
		signal(jobspec.SignalActiveConnections), signal(jobspec.SignalDeadlocks))
	got := s.Sample(ctx)
	for _, name := range []string{jobspec.SignalLockWaits, jobspec.SignalLongestTransaction, jobspec.SignalActiveConnections} {
		require.ErrorContains(t, got[name].Err, "GRANT pg_monitor", name)
		require.ErrorContains(t, got[name].Err, role, name)
	}
	require.NoError(t, got[jobspec.SignalDeadlocks].Err, "pg_stat_database is readable by every role")
}
