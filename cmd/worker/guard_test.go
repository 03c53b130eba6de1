package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/guard"
)

// pidOf reads the pid out of a worker ID (host:pid) or slot (host:pid:n).
func pidOf(t *testing.T, id string) int {
	t.Helper()
	parts := strings.Split(id, ":")
	require.GreaterOrEqual(t, len(parts), 2, id)
	pid, err := strconv.Atoi(parts[1])
	require.NoError(t, err, id)
	return pid
}

func find(t *testing.T, procs []*proc, pid int) *proc {
	t.Helper()
	for _, p := range procs {
		if p.cmd.Process.Pid == pid {
			return p
		}
	}
	t.Fatalf("no worker with pid %d", pid)
	return nil
}

// TestMaxWorkersKillHolder: max_workers 1 across three worker processes of
// two slots each — no two batches ever overlap (each batch takes an advisory
// lock for its transaction and records when it found it taken) — and when
// the slot's holder is killed, another worker carries on within seconds.
func TestMaxWorkersKillHolder(t *testing.T) {
	t.Parallel()
	lock := time.Now().UnixNano() % 1_000_000
	b := setup(t, 30_000, fmt.Sprintf(`task_span: 3000
batch: 50
max_workers: 1
guard: {rules: []}
set: hits = hits + 1, status = 's' || legacy_state, overlap = NOT pg_try_advisory_xact_lock(%d)
`, lock))
	var procs []*proc
	for range 3 {
		procs = append(procs, spawn(t, b.env, "-queue", b.redis.Queue, "-metrics-addr", "127.0.0.1:0", "-concurrency", "2"))
	}
	var holder string
	ebbtest.Eventually(t, "a worker holds the slot", func() bool {
		held := slotsHeld(t, b)
		require.LessOrEqual(t, len(held), 1, "max_workers 1")
		if len(held) == 1 && b.status(t).RowsDone >= 1000 {
			holder = held[0]
			return true
		}
		return false
	})
	victim := find(t, procs, pidOf(t, holder))
	require.NoError(t, victim.cmd.Process.Signal(syscall.SIGKILL))
	_ = victim.wait(t)
	rows := b.status(t).RowsDone
	ebbtest.Eventually(t, "another worker continues after the holder died", func() bool {
		return b.status(t).RowsDone >= rows+1000
	})
	require.Zero(t, b.db.Count(t, "SELECT count(*) FROM "+b.db.Table("orders")+" WHERE overlap"), "two batches were in flight at once")
	require.Positive(t, b.db.Count(t, "SELECT count(*) FROM "+b.db.Table("orders")+" WHERE overlap = false"))
	require.Zero(t, b.db.Count(t, "SELECT count(*) FROM "+b.db.Table("orders")+" WHERE hits > 1"), "rows written twice")
}

// TestLeaderKill: kill -9 the worker that leads the guard; another worker
// takes the lease within one lease period and keeps the decision fresh, so
// the job keeps running.
func TestLeaderKill(t *testing.T) {
	t.Parallel()
	b := setup(t, 30_000, `task_span: 3000
batch: 50
rate: 500
guard: {check_every: 1s, rules: [{signal: active_connections, slow_above: 0.99}]}
`)
	procs := []*proc{b.worker(t), b.worker(t)}
	var leader string
	ebbtest.Eventually(t, "a guard leader", func() bool {
		leader = guardLeader(t, b)
		s := b.status(t)
		return leader != "" && s.Guard != nil && s.Guard.State == string(guard.StateRun) && s.RowsDone > 0
	})
	victim := find(t, procs, pidOf(t, leader))
	require.NoError(t, victim.cmd.Process.Signal(syscall.SIGKILL))
	_ = victim.wait(t)
	killed := time.Now()

	ebbtest.Eventually(t, "another worker leads and publishes", func() bool {
		now := guardLeader(t, b)
		s := b.status(t)
		return now != "" && now != leader && s.Guard.Leader == now && s.Guard.At.After(killed) && !s.Guard.Stale
	})
	require.Less(t, time.Since(killed), 15*time.Second, "takeover within a lease period (3s) plus a check, with room for a loaded machine")
	rows := b.status(t).RowsDone
	ebbtest.Eventually(t, "the job keeps running", func() bool {
		s := b.status(t)
		return s.RowsDone > rows+200 && s.State != control.StatePaused
	})
}

// slotsHeld lists the holders of unexpired max_workers slots of the job: the
// set ledger.SlotsKey names, scored by each lease's expiry (ms).
func slotsHeld(t *testing.T, b *bundle) []string {
	t.Helper()
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	held, err := b.redis.Client.ZRangeByScore(context.Background(), b.ctl.Ledger().SlotsKey(b.job), &redis.ZRangeBy{Min: "(" + now, Max: "+inf"}).Result()
	require.NoError(t, err)
	return held
}

// guardLeader is the worker holding the job's guard lease, or "" when none.
func guardLeader(t *testing.T, b *bundle) string {
	t.Helper()
	id, err := b.redis.Client.Get(context.Background(), b.ctl.Ledger().LeaderKey(b.job)).Result()
	if errors.Is(err, redis.Nil) {
		return ""
	}
	require.NoError(t, err)
	return id
}
