package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// waitTimeout bounds every wait on a condition in these tests.
var waitTimeout = ebbtest.WaitTimeout

func TestWithDatabase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, dsn, db, want, wantErr string
	}{
		{
			name: "url keeps user, password and query",
			dsn:  "postgres://u:p%40ss@127.0.0.1:5432/postgres?sslmode=disable&application_name=x",
			db:   "ebb_demo",
			want: "postgres://u:p%40ss@127.0.0.1:5432/ebb_demo?sslmode=disable&application_name=x",
		},
		{name: "url without path", dsn: "postgresql://h", db: "ebb_demo", want: "postgresql://h/ebb_demo"},
		{name: "key value", dsn: "host=/tmp port=5433 dbname=postgres", db: "ebb_demo", want: "host=/tmp port=5433 dbname=postgres dbname='ebb_demo'"},
		{name: "key value quoting", dsn: "host=h", db: `it's`, want: `host=h dbname='it\'s'`},
		{name: "other scheme", dsn: "mysql://h/db", db: "x", wantErr: "scheme"},
		{name: "empty name", dsn: "postgres://h/db", db: "", wantErr: "empty database name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := withDatabase(tc.dsn, tc.db)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			// Whatever we produce, pgx must read the new database from it.
			cfg, err := pgx.ParseConfig(got)
			if err != nil {
				t.Fatalf("pgx cannot parse %q: %v", got, err)
			}
			if cfg.Database != tc.db {
				t.Fatalf("pgx reads database %q from %q, want %q", cfg.Database, got, tc.db)
			}
		})
	}
}

// rowCounts is what the tests check of a demo table: a backfill is correct
// when no row is pending and every row holds exactly the value the job's
// set computes from it. The demo itself leaves this to enqueuer verify.
type rowCounts struct {
	Total   int64
	Pending int64 // status IS NULL
	Wrong   int64 // status IS DISTINCT FROM 'state_' || legacy_state
}

func countRows(t *testing.T, pool *pgxpool.Pool, table pgx.Identifier) rowCounts {
	t.Helper()
	var c rowCounts
	err := pool.QueryRow(context.Background(), `SELECT
			count(*),
			count(*) FILTER (WHERE status IS NULL),
			count(*) FILTER (WHERE status IS DISTINCT FROM 'state_' || legacy_state)
		FROM `+table.Sanitize()).Scan(&c.Total, &c.Pending, &c.Wrong)
	if err != nil {
		t.Fatalf("count %s: %v", table.Sanitize(), err)
	}
	return c
}

func TestSeedAndCount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := ebbtest.Schema(t)
	pool := db.Pool
	table := pgx.Identifier{db.Schema, "demo_orders"}

	if err := seedTable(ctx, pool, table, 1000); err != nil {
		t.Fatal(err)
	}
	c := countRows(t, pool, table)
	if c != (rowCounts{Total: 1000, Pending: 1000, Wrong: 1000}) {
		t.Fatalf("fresh table counts = %+v, want all 1000 pending and wrong", c)
	}
	var minID, maxID, distinctStates int64
	var hasPK bool
	err := pool.QueryRow(ctx, `SELECT min(id), max(id), count(DISTINCT legacy_state),
			EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'p')
		FROM `+table.Sanitize(), table.Sanitize()).Scan(&minID, &maxID, &distinctStates, &hasPK)
	if err != nil {
		t.Fatal(err)
	}
	if minID != 1 || maxID != 1000 || distinctStates != 7 || !hasPK {
		t.Fatalf("ids [%d,%d], %d legacy states, primary key %v; want [1,1000], 7, true", minID, maxID, distinctStates, hasPK)
	}

	// What a correct backfill does, half of it: counts must follow.
	if _, err := pool.Exec(ctx, "UPDATE "+table.Sanitize()+" SET status = 'state_' || legacy_state WHERE id <= 600"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "UPDATE "+table.Sanitize()+" SET status = 'bogus' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	if c = countRows(t, pool, table); c != (rowCounts{Total: 1000, Pending: 400, Wrong: 401}) {
		t.Fatalf("after partial backfill counts = %+v, want 400 pending, 401 wrong", c)
	}

	// Seeding again starts from scratch.
	if err := seedTable(ctx, pool, table, 10); err != nil {
		t.Fatal(err)
	}
	if c = countRows(t, pool, table); c.Total != 10 || c.Pending != 10 {
		t.Fatalf("reseeded counts = %+v; want 10 pending", c)
	}
}

func TestSeedRejectsNoRows(t *testing.T) {
	t.Parallel()
	err := seedTable(context.Background(), nil, pgx.Identifier{"x"}, 0)
	if err == nil || !strings.Contains(err.Error(), "at least 1") {
		t.Fatalf("err = %v, want a rows error", err)
	}
}

func TestEnsureDatabaseExisting(t *testing.T) {
	t.Parallel()
	pool := ebbtest.Schema(t).Pool
	var current string
	if err := pool.QueryRow(context.Background(), "SELECT current_database()").Scan(&current); err != nil {
		t.Fatal(err)
	}
	created, err := ensureDatabase(context.Background(), ebbtest.DatabaseURL(), current)
	if err != nil || created {
		t.Fatalf("ensureDatabase(existing) = %v, %v; want false, nil", created, err)
	}
}

func TestTrafficNeverTouchesStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := ebbtest.Schema(t)
	pool := db.Pool
	table := pgx.Identifier{db.Schema, "demo_orders"}
	const rows = 200
	if err := seedTable(ctx, pool, table, rows); err != nil {
		t.Fatal(err)
	}
	sumAmounts := func() int64 {
		t.Helper()
		var s int64
		if err := pool.QueryRow(ctx, "SELECT sum(amount_cents) FROM "+table.Sanitize()).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := sumAmounts()

	rec := newRecorder()
	rec.setPhase(phaseBaseline)
	tctx, cancel := context.WithCancel(ctx)
	wait := runTraffic(tctx, pool, trafficConfig{Table: table, Rows: rows, Workers: 3, UpdateEvery: 2},
		rec, slog.New(slog.NewTextHandler(io.Discard, nil)))
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cancel()
			wait()
		}
	})

	deadline := time.Now().Add(waitTimeout)
	for rec.count(phaseBaseline) < 300 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d traffic ops within %s", rec.count(phaseBaseline), waitTimeout)
		}
		if err := waitFor(ctx, 10*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	wait()
	stopped = true

	s := rec.summary(phaseBaseline)
	if s.Errors != 0 {
		t.Fatalf("%d traffic errors, last: %v", s.Errors, rec.lastError())
	}
	if s.P95 <= 0 || s.P50 > s.P95 || s.P95 > s.P99 {
		t.Fatalf("implausible latency summary %+v", s)
	}
	if c := countRows(t, pool, table); c.Pending != rows {
		t.Fatalf("traffic changed status: %d of %d rows still pending", c.Pending, rows)
	}
	// Every second op was an update adding 1 cent; with 300+ ops some landed.
	if after := sumAmounts(); after <= before {
		t.Fatalf("sum(amount_cents) %d -> %d: the traffic's updates did not happen", before, after)
	}
}
