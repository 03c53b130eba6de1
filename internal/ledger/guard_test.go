package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/keyspace"
	"github.com/ebbhq/ebb/internal/ledger"
)

func TestOverrides(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	o, err := b.l.Overrides(ctx, "j")
	require.NoError(t, err)
	require.Equal(t, ledger.Overrides{}, o, "nothing set: nothing overridden")

	require.NoError(t, b.l.SetOverrides(ctx, "j", map[string]string{"rate": "500", "max_workers": "2", "batch_max": "100", "sleep": "250ms"}))
	o, err = b.l.Overrides(ctx, "j")
	require.NoError(t, err)
	require.Equal(t, 500.0, *o.Rate)
	require.Equal(t, 2, *o.MaxWorkers)
	require.Equal(t, 100, *o.BatchMax)
	require.Equal(t, 250*time.Millisecond, *o.Sleep)

	// A hand-typed garbage value is an error naming key, field and fix.
	require.NoError(t, b.rdb.HSet(ctx, b.l.OverridesKey("j"), "rate", "fast", "colour", "red").Err())
	_, err = b.l.Overrides(ctx, "j")
	require.ErrorContains(t, err, `field rate="fast" is not a rate`)
	require.ErrorContains(t, err, `unknown field "colour"`)
	c, err := b.l.Controls(ctx, "j", b.env.Queue)
	require.NoError(t, err, "a bad override is not a Redis error")
	require.ErrorContains(t, c.BadOverrides, `field rate="fast"`, "workers see the same error")

	require.NoError(t, b.l.ClearOverrides(ctx, "j"))
	c, err = b.l.Controls(ctx, "j", b.env.Queue)
	require.NoError(t, err)
	require.WithinDuration(t, time.Now(), c.Now, 5*time.Second, "Redis's clock comes along")
	c.Now = time.Time{}
	require.Equal(t, ledger.Controls{Gone: true}, c, "job j was never started: it has no meta")

	// One round trip reads the pause switches with the rest.
	require.NoError(t, b.l.SetPause(ctx, "j", "1"))
	require.NoError(t, b.rdb.Set(ctx, ledger.QueuePausedKey(b.env.Queue), "1", 0).Err())
	c, err = b.l.Controls(ctx, "j", b.env.Queue)
	require.NoError(t, err)
	require.Equal(t, ledger.PauseFlags{Job: "1", QueuePaused: true}, c.Pause)
	// An unreadable pause key is an error, never "not paused".
	require.NoError(t, b.rdb.Del(ctx, b.l.PauseKey("j")).Err())
	require.NoError(t, b.rdb.LPush(ctx, b.l.PauseKey("j"), "x").Err())
	_, err = b.l.Controls(ctx, "j", b.env.Queue)
	require.ErrorContains(t, err, "WRONGTYPE")
}

func TestSlots(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	ok, err := b.l.AcquireSlot(ctx, "j", "w1", 2, time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	ok, _ = b.l.AcquireSlot(ctx, "j", "w2", 2, time.Minute)
	require.True(t, ok)
	ok, _ = b.l.AcquireSlot(ctx, "j", "w3", 2, time.Minute)
	require.False(t, ok, "both slots are taken")
	ok, _ = b.l.AcquireSlot(ctx, "j", "w1", 2, time.Minute)
	require.True(t, ok, "a holder renews its own slot")
	ok, _ = b.l.AcquireSlot(ctx, "j", "w3", 0, time.Minute)
	require.True(t, ok, "limit 0 is unlimited")
	require.NoError(t, b.l.ReleaseSlot(ctx, "j", "w3"))
	require.NoError(t, b.l.ReleaseSlot(ctx, "j", "w2"))
	ok, _ = b.l.AcquireSlot(ctx, "j", "w3", 2, time.Minute)
	require.True(t, ok, "a released slot is free")

	// A dead holder's slot frees itself when its lease runs out.
	ok, _ = b.l.AcquireSlot(ctx, "dead", "gone", 1, 200*time.Millisecond)
	require.True(t, ok)
	ok, _ = b.l.AcquireSlot(ctx, "dead", "alive", 1, time.Minute)
	require.False(t, ok)
	ebbtest.Eventually(t, "the dead holder's slot expires", func() bool {
		ok, err := b.l.AcquireSlot(ctx, "dead", "alive", 1, time.Minute)
		return err == nil && ok
	})
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	held, err := b.rdb.ZRangeByScore(ctx, b.l.SlotsKey("dead"), &redis.ZRangeBy{Min: "(" + now, Max: "+inf"}).Result()
	require.NoError(t, err)
	require.Equal(t, []string{"alive"}, held, "only the live holder's lease is unexpired")
}

func TestSlotsUnderContention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	var mu sync.Mutex
	inFlight, most := 0, 0
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			me := fmt.Sprintf("w%d", w)
			for got := 0; got < 20; {
				ok, err := b.l.AcquireSlot(ctx, "j", me, 3, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if !ok {
					continue
				}
				mu.Lock()
				inFlight++
				most = max(most, inFlight)
				mu.Unlock()
				mu.Lock()
				inFlight--
				mu.Unlock()
				if err := b.l.ReleaseSlot(ctx, "j", me); err != nil {
					t.Error(err)
				}
				got++
			}
		}()
	}
	wg.Wait()
	require.LessOrEqual(t, most, 3)
}

func TestLeaderLease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	// No job, no lease: a cleaned-up job gets no leader and no decision.
	ok, err := b.l.AcquireLeader(ctx, "j", "a", time.Minute)
	require.NoError(t, err)
	require.False(t, ok)
	b.saveJob(t, "j")
	ok, err = b.l.AcquireLeader(ctx, "j", "a", 300*time.Millisecond)
	require.NoError(t, err)
	require.True(t, ok)
	ok, _ = b.l.AcquireLeader(ctx, "j", "b", time.Minute)
	require.False(t, ok, "a live lease is never stolen")
	ok, _ = b.l.AcquireLeader(ctx, "j", "a", 300*time.Millisecond)
	require.True(t, ok, "the holder renews")

	put, err := b.l.PutDecision(ctx, "j", "b", []byte(`{"state":"run"}`))
	require.NoError(t, err)
	require.False(t, put, "only the lease holder publishes")
	put, err = b.l.PutDecision(ctx, "j", "a", []byte(`{"state":"slow"}`))
	require.NoError(t, err)
	require.True(t, put)
	d, err := b.l.Decision(ctx, "j")
	require.NoError(t, err)
	require.JSONEq(t, `{"state":"slow"}`, string(d))

	// The holder dies: the lease runs out and another takes it.
	ebbtest.Eventually(t, "b takes the expired lease", func() bool {
		ok, err := b.l.AcquireLeader(ctx, "j", "b", time.Minute)
		return err == nil && ok
	})
	leader := func() string {
		who, err := b.rdb.Get(ctx, b.l.LeaderKey("j")).Result()
		if errors.Is(err, redis.Nil) {
			return ""
		}
		require.NoError(t, err)
		return who
	}
	require.Equal(t, "b", leader())
	require.NoError(t, b.l.ReleaseLeader(ctx, "j", "a"), "releasing a lease one does not hold is a no-op")
	require.Equal(t, "b", leader())
	require.NoError(t, b.l.ReleaseLeader(ctx, "j", "b"))
	require.Empty(t, leader())

	none, err := b.l.Decision(ctx, "other")
	require.NoError(t, err)
	require.Nil(t, none)

	// A leader whose job is cleaned up under it writes nothing back.
	ok, err = b.l.AcquireLeader(ctx, "j", "b", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	_, err = b.l.DeleteJob(ctx, "j")
	require.NoError(t, err)
	put, err = b.l.PutDecision(ctx, "j", "b", []byte(`{}`))
	require.NoError(t, err)
	require.False(t, put)
	require.Zero(t, b.rdb.Exists(ctx, b.l.DecisionKey("j")).Val())
}

func TestBaselineAndCommitTimes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	set, err := b.l.SetBaseline(ctx, "j", "p95", 0.25)
	require.NoError(t, err)
	require.True(t, set)
	set, err = b.l.SetBaseline(ctx, "j", "p95", 9)
	require.NoError(t, err)
	require.False(t, set, "the first baseline is kept")
	bl, err := b.l.Baseline(ctx, "j")
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"p95": 0.25}, bl)

	for i := 1; i <= 3; i++ {
		require.NoError(t, b.l.Commit(ctx, "j", 0, 0, keyspace.Int(int64(i)), 1, time.Duration(i)*100*time.Millisecond, time.Minute))
	}
	ct, err := b.l.CommitTimes(ctx, "j")
	require.NoError(t, err)
	require.Equal(t, []time.Duration{300 * time.Millisecond, 200 * time.Millisecond, 100 * time.Millisecond}, ct)
}

// TestCommitTimesOnlyRecent: only commits within CommitWindow count. A
// paused fleet commits nothing, so a p95 over every commit ever kept would
// stay frozen above a pause limit and the pause could never clear.
func TestCommitTimesOnlyRecent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	redisNow, err := b.rdb.Time(ctx).Result()
	require.NoError(t, err)
	// Slow commits from before the window, as a paused fleet leaves them.
	old := redisNow.Add(-ledger.CommitWindow - time.Second).UnixMilli()
	for i := range 5 {
		require.NoError(t, b.rdb.ZAdd(ctx, b.l.CommitsKey("j"), redis.Z{Score: float64(old), Member: fmt.Sprintf("9000.000:0:%d", i)}).Err())
	}
	ct, err := b.l.CommitTimes(ctx, "j")
	require.NoError(t, err)
	require.Empty(t, ct, "commits older than the window do not count")

	require.NoError(t, b.l.Commit(ctx, "j", 0, 0, keyspace.Int(10), 1, 40*time.Millisecond, time.Minute))
	ct, err = b.l.CommitTimes(ctx, "j")
	require.NoError(t, err)
	require.Equal(t, []time.Duration{40 * time.Millisecond}, ct)
	require.Equal(t, int64(1), b.rdb.ZCard(ctx, b.l.CommitsKey("j")).Val(), "a commit drops the old ones")
	require.Positive(t, b.rdb.PTTL(ctx, b.l.CommitsKey("j")).Val(), "an idle job's commit times expire")

	// After a Controls read the commit is stamped from the worker's
	// reading of Redis's clock, not a TIME of its own: it still counts as
	// recent, and an old one is still dropped by the next trim.
	_, err = b.l.Controls(ctx, "j", b.env.Queue)
	require.NoError(t, err)
	require.NoError(t, b.l.Commit(ctx, "j", 2, 0, keyspace.Int(10), 1, 50*time.Millisecond, time.Minute))
	ct, err = b.l.CommitTimes(ctx, "j")
	require.NoError(t, err)
	require.Equal(t, []time.Duration{50 * time.Millisecond, 40 * time.Millisecond}, ct)
	require.NoError(t, b.rdb.ZRem(ctx, b.l.CommitsKey("j"), "50.000:2:"+keyspace.Int(10).Encode()).Err())

	// Two commits with the same time in the same range are both counted.
	require.NoError(t, b.l.Commit(ctx, "j", 1, 0, keyspace.Int(10), 1, 40*time.Millisecond, time.Minute))
	ct, err = b.l.CommitTimes(ctx, "j")
	require.NoError(t, err)
	require.Len(t, ct, 2)
}

// TestCommitReplacesLegacyList: a commits list left by an older ebb neither
// fails checkpoints (WRONGTYPE) nor counts: its entries carry no time.
func TestCommitReplacesLegacyList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	require.NoError(t, b.rdb.LPush(ctx, b.l.CommitsKey("j"), "9000.000").Err())
	ct, err := b.l.CommitTimes(ctx, "j")
	require.NoError(t, err)
	require.Empty(t, ct)
	require.NoError(t, b.l.Commit(ctx, "j", 0, 0, keyspace.Int(1), 1, 25*time.Millisecond, time.Minute))
	ct, err = b.l.CommitTimes(ctx, "j")
	require.NoError(t, err)
	require.Equal(t, []time.Duration{25 * time.Millisecond}, ct)
}

func TestSplit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.saveJob(t, "j") // ranges 0..9
	ids, err := b.l.Split(ctx, "j", 3, 0, halves(350, 374, 375, 400))
	require.NoError(t, err)
	require.Equal(t, [2]int64{10, 11}, ids)
	m, err := b.l.Meta(ctx, "j")
	require.NoError(t, err)
	require.Equal(t, int64(12), m.Ranges, "the job now counts the halves")
	sp, err := b.l.Splits(ctx, "j")
	require.NoError(t, err)
	require.Equal(t, map[int64]keyspace.Range{10: ir(10, 350, 374), 11: ir(11, 375, 400)}, sp)

	// The parent's retry (its enqueue failed) splits again: it gets the same
	// halves, and the job counts no orphan range that nothing would finish.
	again, err := b.l.Split(ctx, "j", 3, 0, halves(360, 380, 381, 400))
	require.NoError(t, err)
	require.Equal(t, ids, again)
	m, err = b.l.Meta(ctx, "j")
	require.NoError(t, err)
	require.Equal(t, int64(12), m.Ranges, "a second split of one parent adds no range")
	sp, err = b.l.Splits(ctx, "j")
	require.NoError(t, err)
	require.Equal(t, map[int64]keyspace.Range{10: ir(10, 350, 374), 11: ir(11, 375, 400)}, sp)

	// Another parent gets halves of its own.
	other, err := b.l.Split(ctx, "j", 5, 0, halves(550, 574, 575, 600))
	require.NoError(t, err)
	require.Equal(t, [2]int64{12, 13}, other)
}

// halves are the two halves of a split, integer bounds.
func halves(lo1, hi1, lo2, hi2 int64) [2]keyspace.Range {
	return [2]keyspace.Range{ir(0, lo1, hi1), ir(0, lo2, hi2)}
}

func ir(id, lo, hi int64) keyspace.Range {
	return keyspace.Range{ID: id, Lo: keyspace.Int(lo), Hi: keyspace.Int(hi)}
}
