package ledger_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/keyspace"
	"github.com/ebbhq/ebb/internal/ledger"
)

type testBundle struct {
	env *ebbtest.RedisEnv
	l   *ledger.Ledger
	rdb *redis.Client
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	env := ebbtest.Redis(t)
	return &testBundle{env: env, l: ledger.New(env.Client, env.Prefix), rdb: env.Client}
}

// saveJob stores a job with ranges 0..9 on the test's queue.
func (b *testBundle) saveJob(t *testing.T, job string) ledger.Meta {
	t.Helper()
	m, err := b.l.SaveJob(context.Background(), job, []byte(`{"name":"`+job+`"}`), ledger.Meta{
		Queue: b.env.Queue, Slicing: slicing(t, 1, 1000, 100), Ranges: 10,
		Created: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
	})
	require.NoError(t, err)
	return m
}

func TestKeyNames(t *testing.T) {
	t.Parallel()
	const prefix = "acme:"
	l := ledger.New(nil, prefix)
	const job = "orders-status"

	perJob := []struct {
		name string
		key  func(string) string
		want string
	}{
		{"pause", l.PauseKey, "acme:{orders-status}:pause"},
		{"spec", l.SpecKey, "acme:{orders-status}:spec"},
		{"meta", l.MetaKey, "acme:{orders-status}:meta"},
		{"cursor", l.CursorKey, "acme:{orders-status}:cursor"},
		{"done", l.DoneKey, "acme:{orders-status}:done"},
		{"failed", l.FailedKey, "acme:{orders-status}:failed"},
		{"stats", l.StatsKey, "acme:{orders-status}:stats"},
		{"alive", l.AliveKey, "acme:{orders-status}:alive"},
		{"overrides", l.OverridesKey, "acme:{orders-status}:overrides"},
		{"slots", l.SlotsKey, "acme:{orders-status}:slots"},
		{"rate limiter", l.RateKey, "acme:{orders-status}:rows"},
		{"leader", l.LeaderKey, "acme:{orders-status}:leader"},
		{"decision", l.DecisionKey, "acme:{orders-status}:decision"},
		{"baseline", l.BaselineKey, "acme:{orders-status}:baseline"},
		{"commits", l.CommitsKey, "acme:{orders-status}:commits"},
		{"splits", l.SplitsKey, "acme:{orders-status}:splits"},
		{"verify report", l.VerifyKey, "acme:{orders-status}:verify"},
	}
	seen := map[string]bool{}
	for _, tc := range perJob {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k := tc.key(job)
			require.Equal(t, tc.want, k)
			// One hash tag per key, the job's, so all of a job's keys land
			// in one Redis Cluster slot and MULTI over them stays legal.
			require.True(t, strings.HasPrefix(k, prefix+"{"+job+"}:"))
			require.Equal(t, 1, strings.Count(k, "{"))
			require.NotEqual(t, tc.key(job), tc.key(job+"-2"), "jobs must not share keys")
		})
		require.False(t, seen[tc.key(job)], "two kinds of data in one key: %s", tc.key(job))
		seen[tc.key(job)] = true
	}

	t.Run("global keys", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, "acme:jobs", l.JobsKey())
		require.Equal(t, "acme:pause", l.GlobalPauseKey())
		require.Equal(t, "acme:", l.Prefix())
	})
	t.Run("default prefix", func(t *testing.T) {
		t.Parallel()
		d := ledger.New(nil, "")
		require.Equal(t, ledger.DefaultPrefix, d.Prefix())
		require.Equal(t, "ebb:pause", d.GlobalPauseKey())
		require.Equal(t, "ebb:{j}:pause", d.PauseKey("j"))
	})
	t.Run("asynq queue pause", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, "asynq:{ebb}:paused", ledger.QueuePausedKey("ebb"))
	})
}

func TestCheckpoint(t *testing.T) {
	t.Parallel()
	const job = "cp"
	tests := []struct {
		name    string
		prepare func(t *testing.T, b *testBundle)
		wantKey keyspace.Key
		wantOK  bool
		wantErr []string
	}{
		{
			name:    "absent",
			prepare: func(t *testing.T, b *testBundle) {},
		},
		{
			name: "other range only",
			prepare: func(t *testing.T, b *testBundle) {
				require.NoError(t, b.l.Commit(context.Background(), job, 4, 0, keyspace.Int(99), 1, time.Millisecond, time.Minute))
			},
		},
		{
			name: "present",
			prepare: func(t *testing.T, b *testBundle) {
				require.NoError(t, b.l.Commit(context.Background(), job, 3, 0, keyspace.Int(250), 10, time.Millisecond, time.Minute))
			},
			wantKey: keyspace.Int(250), wantOK: true,
		},
		{
			name: "lowest key",
			prepare: func(t *testing.T, b *testBundle) {
				require.NoError(t, b.l.Commit(context.Background(), job, 3, 0, keyspace.Int(math.MinInt64), 1, time.Millisecond, time.Minute))
			},
			wantKey: keyspace.Int(math.MinInt64), wantOK: true,
		},
		{
			name: "highest key",
			prepare: func(t *testing.T, b *testBundle) {
				require.NoError(t, b.l.Commit(context.Background(), job, 3, 0, keyspace.Int(math.MaxInt64), 1, time.Millisecond, time.Minute))
			},
			wantKey: keyspace.Int(math.MaxInt64), wantOK: true,
		},
		{
			// Someone edited the cursor by hand: that is not "no progress",
			// which would redo the range from its start at best and hide
			// the edit at worst.
			name: "garbage value",
			prepare: func(t *testing.T, b *testBundle) {
				require.NoError(t, b.rdb.HSet(context.Background(), b.l.CursorKey(job), "3", "twelve").Err())
			},
			wantErr: []string{`holds "twelve", not a key`, "delete field 3 of {cursor}"},
		},
		{
			name: "cursor key of the wrong type",
			prepare: func(t *testing.T, b *testBundle) {
				require.NoError(t, b.rdb.Set(context.Background(), b.l.CursorKey(job), "3", 0).Err())
			},
			wantErr: []string{"read checkpoint cp range 3", "WRONGTYPE"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			tc.prepare(t, b)
			key, ok, err := b.l.Checkpoint(context.Background(), job, 3)
			if tc.wantErr != nil {
				require.Error(t, err)
				require.False(t, ok, "an unreadable checkpoint must not look present")
				for _, w := range tc.wantErr {
					require.Contains(t, err.Error(), strings.ReplaceAll(w, "{cursor}", b.l.CursorKey(job)))
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantOK, ok)
			require.Equal(t, tc.wantKey, key)
		})
	}
}

func TestCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.saveJob(t, "c")

	require.NoError(t, b.l.Commit(ctx, "c", 2, 0, keyspace.Int(100), 40, time.Millisecond, time.Minute))
	require.NoError(t, b.l.Commit(ctx, "c", 2, 0, keyspace.Int(200), 60, time.Millisecond, time.Minute))
	require.NoError(t, b.l.Commit(ctx, "c", 5, 0, keyspace.Int(550), 7, time.Millisecond, time.Minute))

	key, ok, err := b.l.Checkpoint(ctx, "c", 2)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, keyspace.Int(200), key, "the latest commit wins")
	key, ok, err = b.l.Checkpoint(ctx, "c", 5)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, keyspace.Int(550), key, "ranges keep their own cursor")

	s, err := b.l.Snapshot(ctx, "c")
	require.NoError(t, err)
	require.Equal(t, int64(107), s.Rows)
	require.Equal(t, int64(3), s.Batches)
	require.True(t, s.Alive)

	ttl, err := b.rdb.PTTL(ctx, b.l.AliveKey("c")).Result()
	require.NoError(t, err)
	require.Positive(t, ttl, "alive must expire, or a dead fleet looks alive forever")
	require.LessOrEqual(t, ttl, time.Minute)
}

// TestCommitAtomic: a reader never sees a cursor without the counters of the
// batch that moved it. One writer commits key i with one row each time, so
// at every instant cursor == rows == batches.
func TestCommitAtomic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	const job, commits = "atomic", 300

	// If an assertion below stops the test early, the writer must stop
	// before the Redis cleanup runs, or it recreates keys behind it.
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	exited := make(chan struct{})
	t.Cleanup(func() { stop(); <-exited })
	go func() {
		defer close(exited)
		for i := int64(1); i <= commits; i++ {
			if err := b.l.Commit(wctx, job, 0, 0, keyspace.Int(i), 1, time.Millisecond, time.Minute); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()

	read := func() (cursor, rows, batches string) {
		var c, s *redis.Cmd
		_, err := b.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			c = p.Do(ctx, "HGET", b.l.CursorKey(job), "0")
			s = p.Do(ctx, "HMGET", b.l.StatsKey(job), "rows", "batches")
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatalf("read: %v", err)
		}
		cursor, _ = c.Val().(string)
		vals, _ := s.Val().([]any)
		if len(vals) == 2 {
			rows, _ = vals[0].(string)
			batches, _ = vals[1].(string)
		}
		return cursor, rows, batches
	}

	reads := 0
	for finished := false; !finished; {
		select {
		case err := <-done:
			require.NoError(t, err)
			finished = true
		default:
		}
		cursor, rows, batches := read()
		reads++
		require.Equal(t, cursor, rows, "cursor and rows disagree after %d reads", reads)
		require.Equal(t, cursor, batches, "cursor and batches disagree after %d reads", reads)
	}
	cursor, rows, batches := read()
	require.Equal(t, []string{"300", "300", "300"}, []string{cursor, rows, batches})
}

func TestSaveJobKeepsSlicing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	first := b.saveJob(t, "s")
	require.Equal(t, int64(10), first.Ranges)
	require.Equal(t, b.env.Queue, first.Queue)

	// A second start with another range and span keeps the stored slicing,
	// or done marks would point at other keys; the queue may move.
	got, err := b.l.SaveJob(ctx, "s", []byte(`{"v":2}`), ledger.Meta{Queue: "elsewhere", Slicing: slicing(t, 5, 50, 1), Ranges: 46, Created: time.Now()})
	require.NoError(t, err)
	require.NotEmpty(t, first.Run, "the first start names its run")
	require.Equal(t, ledger.Meta{Queue: "elsewhere", Slicing: slicing(t, 1, 1000, 100), Ranges: 10, Created: first.Created, Run: first.Run}, got,
		"a later start keeps the slicing and the run")

	spec, err := b.l.Spec(ctx, "s")
	require.NoError(t, err)
	require.JSONEq(t, `{"v":2}`, string(spec), "the spec is replaced")

	jobs, err := b.l.Jobs(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"s"}, jobs)
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)

	_, err := b.l.Meta(ctx, "ghost")
	require.ErrorIs(t, err, ledger.ErrNotFound)
	_, err = b.l.Spec(ctx, "ghost")
	require.ErrorIs(t, err, ledger.ErrNotFound)
	_, err = b.l.Snapshot(ctx, "ghost")
	require.ErrorIs(t, err, ledger.ErrNotFound)

	// A meta edited by hand is unreadable, not absent: "absent" would let
	// start slice the job again under its done marks.
	require.NoError(t, b.rdb.HSet(ctx, b.l.MetaKey("mangled"), "ranges", "ten").Err())
	_, err = b.l.Meta(ctx, "mangled")
	require.Error(t, err)
	require.NotErrorIs(t, err, ledger.ErrNotFound)
	require.ErrorContains(t, err, b.l.MetaKey("mangled"))
}

func TestSnapshot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	meta := b.saveJob(t, "snap")

	require.NoError(t, b.l.Commit(ctx, "snap", 0, 0, keyspace.Int(100), 5, time.Millisecond, time.Minute))
	require.NoError(t, b.l.Commit(ctx, "snap", 1, 0, keyspace.Int(150), 7, time.Millisecond, time.Minute))
	require.NoError(t, b.l.MarkDone(ctx, "snap", 0, 0))
	require.NoError(t, b.l.MarkDone(ctx, "snap", 0, 0), "marking done twice counts once")
	require.NoError(t, b.l.MarkFailed(ctx, "snap", 7, "permanent: division by zero"))
	require.NoError(t, b.l.MarkFailed(ctx, "snap", 2, "gave up after 5 attempts"))
	require.NoError(t, b.l.MarkFailed(ctx, "snap", 3, "boom"))
	require.NoError(t, b.l.MarkDone(ctx, "snap", 3, 0), "done clears an old failure")
	require.NoError(t, b.l.MarkFailed(ctx, "snap", 4, "boom"))
	require.NoError(t, b.l.ClearFailed(ctx, "snap", 4))
	require.NoError(t, b.l.SetPause(ctx, "snap", "1"))

	s, err := b.l.Snapshot(ctx, "snap")
	require.NoError(t, err)
	require.Equal(t, ledger.Snapshot{
		Meta:       meta,
		RangesDone: 2,
		Failed: []ledger.Failure{
			{Range: 2, Reason: "gave up after 5 attempts"},
			{Range: 7, Reason: "permanent: division by zero"},
		},
		Rows:        12,
		Batches:     2,
		Alive:       true,
		Pause:       ledger.PauseFlags{Job: "1"},
		SpecPresent: true,
	}, s)

	doneRanges, err := b.l.DoneRanges(ctx, "snap")
	require.NoError(t, err)
	require.Equal(t, map[int64]bool{0: true, 3: true}, doneRanges)
	for id, want := range map[int64]bool{0: true, 1: false, 3: true} {
		got, err := b.l.IsDone(ctx, "snap", id)
		require.NoError(t, err)
		require.Equal(t, want, got, "range %d", id)
	}

	t.Run("fresh job", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		meta := b.saveJob(t, "fresh")
		s, err := b.l.Snapshot(ctx, "fresh")
		require.NoError(t, err)
		require.Equal(t, ledger.Snapshot{Meta: meta, SpecPresent: true}, s)
	})

	// status must not show "running" for a job whose pause key cannot be
	// read, even though the global pause key before it is simply absent.
	t.Run("unreadable key is an error", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.saveJob(t, "bad")
		require.NoError(t, b.rdb.LPush(ctx, b.l.PauseKey("bad"), "1").Err())
		_, err := b.l.Snapshot(ctx, "bad")
		require.ErrorContains(t, err, "WRONGTYPE")
	})
}

func TestPauseFlags(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const job = "p"
	tests := []struct {
		name    string
		prepare func(t *testing.T, b *testBundle)
		want    ledger.PauseFlags
		wantErr string
	}{
		{
			name:    "nothing set",
			prepare: func(t *testing.T, b *testBundle) {},
		},
		{
			name: "global",
			prepare: func(t *testing.T, b *testBundle) {
				require.NoError(t, b.l.SetPause(ctx, "", "1"))
			},
			want: ledger.PauseFlags{Global: "1"},
		},
		{
			name: "job, raw value",
			prepare: func(t *testing.T, b *testBundle) {
				// Operators use redis-cli; interpreting the value is guard's.
				require.NoError(t, b.rdb.Set(ctx, b.l.PauseKey(job), "banana", 0).Err())
			},
			want: ledger.PauseFlags{Job: "banana"},
		},
		{
			name: "another job's pause",
			prepare: func(t *testing.T, b *testBundle) {
				require.NoError(t, b.l.SetPause(ctx, "other", "1"))
			},
		},
		{
			name: "cleared",
			prepare: func(t *testing.T, b *testBundle) {
				require.NoError(t, b.l.SetPause(ctx, job, "1"))
				require.NoError(t, b.l.SetPause(ctx, "", "1"))
				require.NoError(t, b.l.ClearPause(ctx, job))
				require.NoError(t, b.l.ClearPause(ctx, ""))
			},
		},
		{
			// The flag Asynqmon's Pause button sets, through asynq's own
			// API, so a change of asynq's key name breaks this test.
			name: "asynq queue paused",
			prepare: func(t *testing.T, b *testBundle) {
				require.NoError(t, asynq.NewInspectorFromRedisClient(b.rdb).PauseQueue(b.env.Queue))
			},
			want: ledger.PauseFlags{QueuePaused: true},
		},
		{
			// Fail closed: a pause key nobody can read must not read as
			// "not paused", even when the global key is simply absent.
			name: "job pause key of the wrong type",
			prepare: func(t *testing.T, b *testBundle) {
				require.NoError(t, b.rdb.LPush(ctx, b.l.PauseKey(job), "1").Err())
			},
			wantErr: "WRONGTYPE",
		},
		{
			name: "global pause key of the wrong type",
			prepare: func(t *testing.T, b *testBundle) {
				require.NoError(t, b.rdb.SAdd(ctx, b.l.GlobalPauseKey(), "1").Err())
			},
			wantErr: "WRONGTYPE",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			tc.prepare(t, b)
			got, err := b.l.Controls(ctx, job, b.env.Queue)
			// Pauses is what a worker reads before every batch between two
			// Controls reads: it must see the same switches, errors included.
			pauses, perr := b.l.Pauses(ctx, job, b.env.Queue)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.ErrorContains(t, err, "read pause keys, guard decision and overrides of p")
				require.ErrorContains(t, perr, tc.wantErr)
				require.ErrorContains(t, perr, "read pause keys of p")
				return
			}
			require.NoError(t, err)
			require.NoError(t, perr)
			require.Equal(t, tc.want, got.Pause)
			require.Equal(t, tc.want, pauses)
		})
	}
}

// TestDeleteJob removes every key a job ever had and nothing of another job.
func TestDeleteJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	for _, job := range []string{"gone", "kept"} {
		b.saveJob(t, job)
		require.NoError(t, b.l.Commit(ctx, job, 0, 0, keyspace.Int(10), 10, time.Millisecond, time.Minute))
		require.NoError(t, b.l.MarkDone(ctx, job, 0, 0))
		require.NoError(t, b.l.MarkFailed(ctx, job, 1, "boom"))
		require.NoError(t, b.l.SetPause(ctx, job, "1"))
	}
	n, err := b.l.DeleteJob(ctx, "gone")
	require.NoError(t, err)
	require.Equal(t, int64(9), n, "spec, meta, cursor, done, failed, stats, alive, pause, commits")

	left, err := b.rdb.Keys(ctx, b.env.Prefix+"{gone}*").Result()
	require.NoError(t, err)
	require.Empty(t, left, "keys of the deleted job")
	_, err = b.l.Meta(ctx, "gone")
	require.ErrorIs(t, err, ledger.ErrNotFound)
	jobs, err := b.l.Jobs(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"kept"}, jobs)
	_, err = b.l.Snapshot(ctx, "kept")
	require.NoError(t, err, "the other job is untouched")
}

// slicing is the integer slicing of [from, to] by span.
func slicing(t *testing.T, from, to, span int64) keyspace.Slicing {
	t.Helper()
	sp, err := keyspace.New("id")
	require.NoError(t, err)
	sl, err := sp.Slice(keyspace.Int(from), keyspace.Int(to), span)
	require.NoError(t, err)
	return sl
}

// TestLegacyFormats: a job started by an ebb from before key shapes (meta
// with from/to/span and no slicing, bare integer cursors, "lo:hi" splits)
// still reads, and its slicing is the one it was started with.
func TestLegacyFormats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	const job = "old"
	require.NoError(t, b.rdb.HSet(ctx, b.l.MetaKey(job), map[string]any{
		"queue": b.env.Queue, "from": "1", "to": "1000", "span": "100", "ranges": "12",
	}).Err())
	require.NoError(t, b.rdb.HSet(ctx, b.l.CursorKey(job), "3", "350").Err())
	require.NoError(t, b.rdb.HSet(ctx, b.l.SplitsKey(job), "10", "351:375", "11", "376:400", "parent:3", "10,11").Err())

	m, err := b.l.Meta(ctx, job)
	require.NoError(t, err)
	require.Equal(t, slicing(t, 1, 1000, 100), m.Slicing)
	require.Equal(t, int64(12), m.Ranges)
	cp, ok, err := b.l.Checkpoint(ctx, job, 3)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, keyspace.Int(350), cp)
	sp, err := b.l.Splits(ctx, job)
	require.NoError(t, err)
	require.Equal(t, map[int64]keyspace.Range{
		10: {ID: 10, Lo: keyspace.Int(351), Hi: keyspace.Int(375)},
		11: {ID: 11, Lo: keyspace.Int(376), Hi: keyspace.Int(400)},
	}, sp)

	// A new split of the old job is written in the lossless form.
	ids, err := b.l.Split(ctx, job, 5, 0, [2]keyspace.Range{{Lo: keyspace.Int(550), Hi: keyspace.Int(574)}, {Lo: keyspace.Int(575), Hi: keyspace.Int(600)}})
	require.NoError(t, err)
	require.Equal(t, [2]int64{12, 13}, ids)
	v, err := b.rdb.HGet(ctx, b.l.SplitsKey(job), "12").Result()
	require.NoError(t, err)
	require.Equal(t, "[550,574]", v)

	// A hand-edited slicing is an error, not a silent reslice.
	require.NoError(t, b.rdb.HSet(ctx, b.l.MetaKey(job), "slicing", "garbage").Err())
	_, err = b.l.Meta(ctx, job)
	require.ErrorContains(t, err, "edited by hand")
}
