package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ebbhq/ebb/internal/keyspace"
)

// Keys of the guard: live overrides, the fleet's concurrency slots, the
// guard leader's lease, its decision and the job's baseline. The fleet's
// rate limiter has its own file, rate.go.

// OverridesKey is a hash of live limits an operator set with enqueuer set or
// redis-cli: rate, max_workers, batch_max, sleep. Absent fields fall back to
// the job file.
func (l *Ledger) OverridesKey(job string) string { return l.jobKey(job, "overrides") }

// SlotsKey is a sorted set of batches in flight: member → lease expiry (ms).
func (l *Ledger) SlotsKey(job string) string { return l.jobKey(job, "slots") }

// LeaderKey holds the ID of the worker that samples the job's signals.
func (l *Ledger) LeaderKey(job string) string { return l.jobKey(job, "leader") }

// DecisionKey holds the leader's last decision (JSON, with its own expiry).
func (l *Ledger) DecisionKey(job string) string { return l.jobKey(job, "decision") }

// BaselineKey is a hash: rule name → the signal's level before the job.
func (l *Ledger) BaselineKey(job string) string { return l.jobKey(job, "baseline") }

// CommitsKey is a sorted set of the fleet's recent commits: member
// "took_ms:range:key", scored by the Redis time (ms) of the commit; the
// leader reads the p95 of those within CommitWindow.
func (l *Ledger) CommitsKey(job string) string { return l.jobKey(job, "commits") }

// SplitsKey is a hash: range ID → "lo:hi" of ranges made by splitting a
// range that kept timing out.
func (l *Ledger) SplitsKey(job string) string { return l.jobKey(job, "splits") }

// commitsKept bounds the commit-time set: enough for a stable p95.
const commitsKept = 200

// trimEvery is how many of a job's batches pass between two trims of its
// commit-time set: the set holds at most commitsKept + trimEvery members.
const trimEvery = 8

// CommitWindow is how far back commits count for commit_p95_seconds. The
// list used to keep the last 200 commits whatever their age, so once a
// pause rule on that signal fired no new commit could ever come in to move
// the p95 below the limit and the job stayed paused for good. A minute is
// long enough for a stable p95 at a few batches a second and short enough
// to clear soon after the fleet stops.
const CommitWindow = time.Minute

// recentCommits returns the members of the commit set newer than the window,
// newest first, judged by Redis's clock like Commit. A list left by
// an older ebb reads as empty: its entries carry no time, so none is known
// to be recent.
//
//	KEYS[1]  commits
//	ARGV[1]  window in ms
//	ARGV[2]  at most this many
//	returns  members, newest first
var recentCommits = redis.NewScript(`
if redis.call('TYPE', KEYS[1]).ok ~= 'zset' then return {} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', '(' .. (now - tonumber(ARGV[1])), 'LIMIT', 0, tonumber(ARGV[2]))
`)

// Overrides are live limits; a nil field is not overridden.
type Overrides struct {
	Rate       *float64
	MaxWorkers *int
	BatchMax   *int
	Sleep      *time.Duration
}

// Override field names in OverridesKey.
const (
	OverrideRate       = "rate"
	OverrideMaxWorkers = "max_workers"
	OverrideBatchMax   = "batch_max"
	OverrideSleep      = "sleep"
)

// Overrides reads the live limits. A field that does not parse is an error
// naming the key and field, never silently ignored.
func (l *Ledger) Overrides(ctx context.Context, job string) (Overrides, error) {
	h, err := l.rdb.HGetAll(ctx, l.OverridesKey(job)).Result()
	if err != nil {
		return Overrides{}, fmt.Errorf("read overrides of %s: %w", job, err)
	}
	return ParseOverrides(l.OverridesKey(job), h)
}

// ParseOverrides reads the raw hash of OverridesKey.
func ParseOverrides(key string, h map[string]string) (Overrides, error) {
	var o Overrides
	var errs []error
	bad := func(field, v, want string) {
		errs = append(errs, fmt.Errorf("%s field %s=%q is not %s; fix it with enqueuer set or HDEL %s %s", key, field, v, want, key, field))
	}
	for field, v := range h {
		v = strings.TrimSpace(v)
		switch field {
		case OverrideRate:
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 {
				bad(field, v, "a rate in rows per second (0 = unlimited)")
				continue
			}
			o.Rate = &f
		case OverrideMaxWorkers, OverrideBatchMax:
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				bad(field, v, "a whole number (0 = no limit)")
				continue
			}
			if field == OverrideMaxWorkers {
				o.MaxWorkers = &n
			} else {
				o.BatchMax = &n
			}
		case OverrideSleep:
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				bad(field, v, "a duration like 100ms")
				continue
			}
			o.Sleep = &d
		default:
			errs = append(errs, fmt.Errorf("%s has unknown field %q; known fields are rate, max_workers, batch_max, sleep (HDEL %s %s)", key, field, key, field))
		}
	}
	return o, errors.Join(errs...)
}

// SetOverrides writes the given raw fields (already validated by the caller).
func (l *Ledger) SetOverrides(ctx context.Context, job string, fields map[string]string) error {
	if len(fields) == 0 {
		return nil
	}
	if err := l.rdb.HSet(ctx, l.OverridesKey(job), fields).Err(); err != nil {
		return fmt.Errorf("set overrides of %s: %w", job, err)
	}
	return nil
}

// ClearOverrides drops every live override: the job file's limits apply.
func (l *Ledger) ClearOverrides(ctx context.Context, job string) error {
	if err := l.rdb.Del(ctx, l.OverridesKey(job)).Err(); err != nil {
		return fmt.Errorf("clear overrides of %s: %w", job, err)
	}
	return nil
}

// acquireSlot takes a slot when fewer than ARGV[2] unexpired slots are held,
// or renews the lease of one ARGV[1] already holds. Time comes from Redis, so worker clocks do not matter; expired slots (a
// worker died holding one) are dropped first.
var acquireSlot = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(ARGV[2])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
  return 1
end
if limit > 0 and redis.call('ZCARD', KEYS[1]) >= limit then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
return 1
`)

// AcquireSlot takes one of limit fleet-wide slots for holder, leased for ttl,
// or renews holder's lease when it holds one. It reports false when all
// slots are taken (a renewal after the lease ran out may find that too).
func (l *Ledger) AcquireSlot(ctx context.Context, job, holder string, limit int, ttl time.Duration) (bool, error) {
	n, err := acquireSlot.Run(ctx, l.rdb, []string{l.SlotsKey(job)}, holder, limit, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("take a batch slot of %s: %w", job, err)
	}
	return n == 1, nil
}

// ReleaseSlot gives holder's slot back.
func (l *Ledger) ReleaseSlot(ctx context.Context, job, holder string) error {
	if err := l.rdb.ZRem(ctx, l.SlotsKey(job), holder).Err(); err != nil {
		return fmt.Errorf("release batch slot of %s: %w", job, err)
	}
	return nil
}

// leaseScript takes the lease when it is free or renews it when holder has
// it; it never steals a live lease, and never leads a job whose meta is gone
// (cleaned up), which would leave keys behind the cleanup.
var leaseScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`)

// AcquireLeader takes or renews the guard lease of job for holder.
func (l *Ledger) AcquireLeader(ctx context.Context, job, holder string, ttl time.Duration) (bool, error) {
	n, err := leaseScript.Run(ctx, l.rdb, []string{l.LeaderKey(job), l.MetaKey(job)}, holder, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("take guard lease of %s: %w", job, err)
	}
	return n == 1, nil
}

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// ReleaseLeader gives the lease up if holder has it, so another worker
// takes over at once instead of after the lease runs out.
func (l *Ledger) ReleaseLeader(ctx context.Context, job, holder string) error {
	if err := releaseScript.Run(ctx, l.rdb, []string{l.LeaderKey(job)}, holder).Err(); err != nil {
		return fmt.Errorf("release guard lease of %s: %w", job, err)
	}
	return nil
}

// PutDecision stores the leader's decision, but only while holder still
// holds the lease, so a leader that lost it cannot overwrite its successor.
func (l *Ledger) PutDecision(ctx context.Context, job, holder string, decision []byte) (bool, error) {
	n, err := putDecision.Run(ctx, l.rdb, []string{l.LeaderKey(job), l.DecisionKey(job), l.MetaKey(job)}, holder, decision).Int()
	if err != nil {
		return false, fmt.Errorf("publish guard decision of %s: %w", job, err)
	}
	return n == 1, nil
}

var putDecision = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
return 1
`)

// Decision returns the stored decision JSON, or nil when there is none.
func (l *Ledger) Decision(ctx context.Context, job string) ([]byte, error) {
	b, err := l.rdb.Get(ctx, l.DecisionKey(job)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read guard decision of %s: %w", job, err)
	}
	return b, nil
}

// Controls is what a worker reads before each batch: the pause switches,
// the guard's decision and the live overrides, and Redis's clock.
type Controls struct {
	Pause     PauseFlags
	Decision  []byte
	Overrides Overrides
	// BadOverrides names override fields that do not parse. It is not a
	// read error: the worker pauses the job on it (fail closed, like a
	// garbage pause value) instead of failing its ranges.
	BadOverrides error
	// Now is Redis's TIME: the leader stamps decisions with it too, so a
	// worker whose clock is off neither pauses on a fresh decision nor runs
	// on a stale one.
	Now time.Time
	// Run is the job's run (Meta.Run). Gone is set when the job has no
	// meta at all: Redis lost its data or the job was cleaned up, and a
	// worker must stop writing rather than rebuild a ledger nobody reads.
	Run  string
	Gone bool
	// GuardOverridden is set while an operator overrides the guard
	// (GuardOverrideKey): the worker ignores the guard's decision.
	GuardOverridden bool
}

// Controls reads everything a batch obeys in one round trip: it runs before
// every batch, so one pipeline instead of one call per key.
func (l *Ledger) Controls(ctx context.Context, job, queue string) (Controls, error) {
	var g, j, d *redis.StringCmd
	var q *redis.IntCmd
	var o *redis.MapStringStringCmd
	var now *redis.TimeCmd
	var m *redis.SliceCmd
	var gov *redis.IntCmd
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		now = p.Time(ctx)
		g = p.Get(ctx, l.GlobalPauseKey())
		j = p.Get(ctx, l.PauseKey(job))
		q = p.Exists(ctx, QueuePausedKey(queue))
		d = p.Get(ctx, l.DecisionKey(job))
		o = p.HGetAll(ctx, l.OverridesKey(job))
		m = p.HMGet(ctx, l.MetaKey(job), "run", "ranges")
		gov = p.Exists(ctx, l.GuardOverrideKey(job))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Controls{}, fmt.Errorf("read pause keys, guard decision and overrides of %s: %w", job, err)
	}
	// A pipeline reports only its first failed command, and an absent key
	// (redis.Nil) counts as failed: check every command, or an unreadable
	// key behind an absent one would read as "not paused".
	if err := firstErr(now, g, j, q, d, o, m, gov); err != nil {
		return Controls{}, fmt.Errorf("read pause keys, guard decision and overrides of %s: %w", job, err)
	}
	l.clock.observe(now.Val())
	ov, bad := ParseOverrides(l.OverridesKey(job), o.Val())
	c := Controls{Pause: PauseFlags{Global: g.Val(), Job: j.Val(), QueuePaused: q.Val() > 0}, Overrides: ov, BadOverrides: bad, Now: now.Val()}
	if d.Err() == nil {
		c.Decision = []byte(d.Val())
	}
	meta := m.Val()
	c.Run, _ = meta[0].(string)
	c.Gone = meta[1] == nil
	c.GuardOverridden = gov.Val() > 0
	return c, nil
}

// Pauses reads only the pause switches of job, in one round trip: a worker
// reads them before every batch, so a pause bites before the next batch,
// while the rest of Controls (decision, overrides), which change at most
// once a guard check, serves several batches.
func (l *Ledger) Pauses(ctx context.Context, job, queue string) (PauseFlags, error) {
	var g, j *redis.StringCmd
	var q *redis.IntCmd
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		g = p.Get(ctx, l.GlobalPauseKey())
		j = p.Get(ctx, l.PauseKey(job))
		q = p.Exists(ctx, QueuePausedKey(queue))
		return nil
	})
	if err == nil || errors.Is(err, redis.Nil) {
		err = firstErr(g, j, q)
	}
	if err != nil {
		return PauseFlags{}, fmt.Errorf("read pause keys of %s: %w", job, err)
	}
	return PauseFlags{Global: g.Val(), Job: j.Val(), QueuePaused: q.Val() > 0}, nil
}

// Baseline returns the stored baselines by rule name.
func (l *Ledger) Baseline(ctx context.Context, job string) (map[string]float64, error) {
	h, err := l.rdb.HGetAll(ctx, l.BaselineKey(job)).Result()
	if err != nil {
		return nil, fmt.Errorf("read baseline of %s: %w", job, err)
	}
	out := make(map[string]float64, len(h))
	for k, v := range h {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("%s field %s=%q is not a number; HDEL it to measure the baseline again", l.BaselineKey(job), k, v)
		}
		out[k] = f
	}
	return out, nil
}

// SetBaseline stores a rule's baseline unless one is stored already: the
// level before the job started must not drift to the level during it.
func (l *Ledger) SetBaseline(ctx context.Context, job, rule string, v float64) (bool, error) {
	ok, err := l.rdb.HSetNX(ctx, l.BaselineKey(job), rule, strconv.FormatFloat(v, 'g', -1, 64)).Result()
	if err != nil {
		return false, fmt.Errorf("store baseline of %s rule %s: %w", job, rule, err)
	}
	return ok, nil
}

// CommitTimes returns the fleet's commit times of the last CommitWindow
// (by Redis's clock), newest first; none when the fleet has not committed
// within it.
func (l *Ledger) CommitTimes(ctx context.Context, job string) ([]time.Duration, error) {
	vals, err := recentCommits.Run(ctx, l.rdb, []string{l.CommitsKey(job)}, CommitWindow.Milliseconds(), commitsKept).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("read commit times of %s: %w", job, err)
	}
	out := make([]time.Duration, 0, len(vals))
	for _, v := range vals {
		took, _, _ := strings.Cut(v, ":")
		if ms, err := strconv.ParseFloat(took, 64); err == nil {
			out = append(out, time.Duration(ms*float64(time.Millisecond)))
		}
	}
	return out, nil
}

// Split records two ranges that replace what is left of parent and returns
// their IDs. The parent is not marked done here: the caller enqueues the
// children first, then marks the parent done, so a crash in between redoes
// work (idempotent) instead of losing it. A parent split before gets its
// first halves back: a retry after a failed enqueue must not leave orphan
// range IDs that no task will ever finish. Those halves cover what the
// retry would split, since a range's checkpoint only moves forward. A
// newer fencing token than token (0: unfenced) refuses the split with
// ErrFenced: a worker that stalled must not cut a range it no longer owns.
func (l *Ledger) Split(ctx context.Context, job string, parent, token int64, halves [2]keyspace.Range) ([2]int64, error) {
	ids, err := splitScript.Run(ctx, l.rdb, []string{l.MetaKey(job), l.SplitsKey(job), l.FenceKey(job)},
		encodeBounds(halves[0]), encodeBounds(halves[1]), parent, token).Int64Slice()
	if err == nil && len(ids) == 1 {
		return [2]int64{}, fmt.Errorf("split %s range %d (token %d): %w", job, parent, token, ErrFenced)
	}
	if err != nil || len(ids) != 2 {
		return [2]int64{}, fmt.Errorf("split %s range %d: %w", job, parent, err)
	}
	return [2]int64{ids[0], ids[1]}, nil
}

// splitScript allots two range IDs to the halves of a split parent, once per
// parent.
// KEYS[1] meta, KEYS[2] splits, KEYS[3] fence.
// ARGV[1], ARGV[2] the bounds of each half, "[lo,hi]" (encodeBounds);
// ARGV[3] the parent's range ID; ARGV[4] its fencing token (0: unfenced).
// Returns the halves' IDs: new ones (HINCRBY meta ranges 2), or those of the
// parent's earlier split, kept in the splits field "parent:ID" as "a,b";
// {-1} when fenced out.
var splitScript = redis.NewScript(fencedLua("KEYS[3]", "ARGV[3]", "ARGV[4]", "{-1}") + `
local before = redis.call('HGET', KEYS[2], 'parent:' .. ARGV[3])
if before then
  local a, b = string.match(before, '^(%d+),(%d+)$')
  return {tonumber(a), tonumber(b)}
end
local last = redis.call('HINCRBY', KEYS[1], 'ranges', 2)
redis.call('HSET', KEYS[2], last - 2, ARGV[1], last - 1, ARGV[2], 'parent:' .. ARGV[3], (last - 2) .. ',' .. (last - 1))
return {last - 2, last - 1}
`)

// splitParentPrefix marks the fields of the splits hash that remember which
// parent a split came from; the others are range ID → bounds, "[lo,hi]" in
// keyspace's key JSON (ebb before key shapes wrote "lo:hi", still read).
const splitParentPrefix = "parent:"

// Splits returns the ranges made by splitting, by range ID.
func (l *Ledger) Splits(ctx context.Context, job string) (map[int64]keyspace.Range, error) {
	h, err := l.rdb.HGetAll(ctx, l.SplitsKey(job)).Result()
	if err != nil {
		return nil, fmt.Errorf("read split ranges of %s: %w", job, err)
	}
	out := make(map[int64]keyspace.Range, len(h))
	for k, v := range h {
		if strings.HasPrefix(k, splitParentPrefix) {
			continue
		}
		rid, err1 := strconv.ParseInt(k, 10, 64)
		r, err2 := decodeBounds(v)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s field %s=%q is not range ID → [lo,hi]; was it edited by hand?", l.SplitsKey(job), k, v)
		}
		r.ID = rid
		out[rid] = r
	}
	return out, nil
}

// SplitHalves returns, for every range split after repeated timeouts, the
// IDs of its two halves (the splits hash's "parent:ID" fields), so a
// range's descendants can be found for any key shape.
func (l *Ledger) SplitHalves(ctx context.Context, job string) (map[int64][2]int64, error) {
	h, err := l.rdb.HGetAll(ctx, l.SplitsKey(job)).Result()
	if err != nil {
		return nil, fmt.Errorf("read split ranges of %s: %w", job, err)
	}
	out := map[int64][2]int64{}
	for k, v := range h {
		p, ok := strings.CutPrefix(k, splitParentPrefix)
		if !ok {
			continue
		}
		a, b, _ := strings.Cut(v, ",")
		parent, err1 := strconv.ParseInt(p, 10, 64)
		first, err2 := strconv.ParseInt(a, 10, 64)
		second, err3 := strconv.ParseInt(b, 10, 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("%s field %s=%q is not parent:ID → \"a,b\"; was it edited by hand?", l.SplitsKey(job), k, v)
		}
		out[parent] = [2]int64{first, second}
	}
	return out, nil
}

// encodeBounds is a split half's value in the splits hash: its bounds as a
// JSON pair of keys, lossless for every key shape, with a third element
// "after" when its lower bound is exclusive (the second half of an
// ordered key's split).
func encodeBounds(r keyspace.Range) string {
	v := []any{r.Lo, r.Hi}
	if r.After {
		v = append(v, boundsAfter)
	}
	b, _ := json.Marshal(v) // keys always marshal
	return string(b)
}

// boundsAfter marks an exclusive lower bound in encodeBounds.
const boundsAfter = "after"

// decodeBounds reads encodeBounds, or the "lo:hi" of integers an older ebb
// wrote.
func decodeBounds(v string) (keyspace.Range, error) {
	if lo, hi, ok := strings.Cut(v, ":"); ok && !strings.HasPrefix(v, "[") {
		a, err1 := keyspace.DecodeKey(lo)
		b, err2 := keyspace.DecodeKey(hi)
		return keyspace.Range{Lo: a, Hi: b}, errors.Join(err1, err2)
	}
	var parts []json.RawMessage
	if err := json.Unmarshal([]byte(v), &parts); err != nil {
		return keyspace.Range{}, err
	}
	if len(parts) != 2 && (len(parts) != 3 || string(parts[2]) != `"`+boundsAfter+`"`) {
		return keyspace.Range{}, keyspace.ErrBadKey
	}
	var r keyspace.Range
	if err := json.Unmarshal(parts[0], &r.Lo); err != nil {
		return keyspace.Range{}, err
	}
	if err := json.Unmarshal(parts[1], &r.Hi); err != nil {
		return keyspace.Range{}, err
	}
	if r.Lo.IsZero() || r.Hi.IsZero() {
		return keyspace.Range{}, keyspace.ErrBadKey
	}
	r.After = len(parts) == 3
	return r, nil
}

// Now is Redis's clock, the one time every worker and the leader share.
func (l *Ledger) Now(ctx context.Context) (time.Time, error) {
	t, err := l.rdb.Time(ctx).Result()
	if err != nil {
		return time.Time{}, fmt.Errorf("read Redis time: %w", err)
	}
	return t, nil
}

// Progress is what the guard leader needs to know about a job each check.
type Progress struct {
	Finished bool
	Rows     int64
	Created  time.Time
}

// Progress reads whether every range is done and the rows written so far.
func (l *Ledger) Progress(ctx context.Context, job string) (Progress, error) {
	m, err := l.Meta(ctx, job)
	if err != nil {
		return Progress{}, err
	}
	var done *redis.IntCmd
	var rows *redis.StringCmd
	_, err = l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		done = p.SCard(ctx, l.DoneKey(job))
		rows = p.HGet(ctx, l.StatsKey(job), "rows")
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Progress{}, fmt.Errorf("read progress of %s: %w", job, err)
	}
	if err := firstErr(done, rows); err != nil {
		return Progress{}, fmt.Errorf("read progress of %s: %w", job, err)
	}
	n, _ := strconv.ParseInt(rows.Val(), 10, 64)
	return Progress{Finished: done.Val() >= m.Ranges, Rows: n, Created: m.Created}, nil
}

// VerifyKey holds the last verify report of the job (JSON).
func (l *Ledger) VerifyKey(job string) string { return l.jobKey(job, "verify") }

// SaveVerify stores a verify report with the job.
func (l *Ledger) SaveVerify(ctx context.Context, job string, report []byte) error {
	if err := l.rdb.Set(ctx, l.VerifyKey(job), report, 0).Err(); err != nil {
		return fmt.Errorf("store verify report of %s: %w", job, err)
	}
	return nil
}

// LastVerify returns the last verify report stored with the job, nil
// when it was never verified.
func (l *Ledger) LastVerify(ctx context.Context, job string) ([]byte, error) {
	b, err := l.rdb.Get(ctx, l.VerifyKey(job)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read verify report of %s: %w", job, err)
	}
	return b, nil
}

// HistoryKey is the job's guard history: a list of JSON entries, newest
// first, one per change of the guard's state or rate factor.
func (l *Ledger) HistoryKey(job string) string { return l.jobKey(job, "history") }

// HistoryKept caps the guard history: at one change a check, a few hours
// of a flapping guard, and days of an ordinary one.
const HistoryKept = 1000

// RecordHistory adds one entry to the job's guard history and trims it to
// HistoryKept, in one MULTI.
func (l *Ledger) RecordHistory(ctx context.Context, job string, entry []byte) error {
	_, err := l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, l.HistoryKey(job), entry)
		p.LTrim(ctx, l.HistoryKey(job), 0, HistoryKept-1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("record guard history of %s: %w", job, err)
	}
	return nil
}

// History returns up to n entries of the job's guard history, newest
// first (all with n <= 0).
func (l *Ledger) History(ctx context.Context, job string, n int) ([][]byte, error) {
	vals, err := l.rdb.LRange(ctx, l.HistoryKey(job), 0, int64(n)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("read guard history of %s: %w", job, err)
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		out[i] = []byte(v)
	}
	return out, nil
}
