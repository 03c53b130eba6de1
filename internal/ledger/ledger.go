// Package ledger is ebb's Redis schema: every key name ebb uses and every
// command that touches them. A range's checkpoint (last committed key) and
// its done mark live here, written only after the database COMMIT, so a crash
// can make a range redo work but never skip it.
//
// Every per-job key carries the {job} hash tag, so one job's keys live in one
// Redis Cluster slot and the multi-key transactions below stay legal there.
// See README.md in this directory for the key map.
package ledger

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/ebbhq/ebb/internal/keyspace"
)

// DefaultPrefix starts every ebb key. Tests use their own.
const DefaultPrefix = "ebb:"

// ErrNotFound means the ledger holds no such job; callers branch on it, and
// it is never returned for a Redis error (a transient failure must never look
// like "start from scratch").
var ErrNotFound = errors.New("ledger: not found")

// Ledger reads and writes ebb's keys. The caller owns and closes the client.
type Ledger struct {
	rdb    redis.UniversalClient
	prefix string
	// limiter runs the fleet's rate limit (AllowN) on rdb.
	limiter *redis_rate.Limiter
	// clock is Redis's TIME as Controls last read it.
	clock redisClock
}

// New returns a ledger on rdb; an empty prefix means DefaultPrefix.
func New(rdb redis.UniversalClient, prefix string) *Ledger {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Ledger{rdb: rdb, prefix: prefix, limiter: redis_rate.NewLimiter(rdb)}
}

// Prefix is the key prefix in use.
func (l *Ledger) Prefix() string { return l.prefix }

// Key names. Only this package formats them.

// JobsKey is a set of every job name started on this Redis.
func (l *Ledger) JobsKey() string { return l.prefix + "jobs" }

// GlobalPauseKey pauses every job when set to a true value.
func (l *Ledger) GlobalPauseKey() string { return l.prefix + "pause" }

// PauseKey pauses one job when set to a true value.
func (l *Ledger) PauseKey(job string) string { return l.jobKey(job, "pause") }

// SpecKey holds the job spec as JSON.
func (l *Ledger) SpecKey(job string) string { return l.jobKey(job, "spec") }

// MetaKey is a hash with the job's slicing (an opaque string keyspace
// writes; jobs started before it hold from, to and span instead), its range
// count and queue.
func (l *Ledger) MetaKey(job string) string { return l.jobKey(job, "meta") }

// CursorKey is a hash: range ID → last committed key (keyspace's encoding;
// an integer key is the bare number).
func (l *Ledger) CursorKey(job string) string { return l.jobKey(job, "cursor") }

// DoneKey is a set of range IDs that are finished.
func (l *Ledger) DoneKey(job string) string { return l.jobKey(job, "done") }

// FailedKey is a hash: range ID → why the range failed.
func (l *Ledger) FailedKey(job string) string { return l.jobKey(job, "failed") }

// StatsKey is a hash of counters: rows, batches.
func (l *Ledger) StatsKey(job string) string { return l.jobKey(job, "stats") }

// AliveKey exists while some worker committed a batch of the job recently.
func (l *Ledger) AliveKey(job string) string { return l.jobKey(job, "alive") }

// asynqPausedKeyFormat is asynq's key, not ebb's: hibiken/asynq's
// internal/base builds a queue's pause flag as PausedKey(qname) =
// "asynq:{" + qname + "}:paused". The ledger only reads it; if asynq ever
// renames it, this is the one line to change.
const asynqPausedKeyFormat = "asynq:{%s}:paused"

// QueuePausedKey is asynq's own pause flag for a queue (set by Asynqmon's
// Pause button and Inspector.PauseQueue). asynq only stops dequeuing on it;
// workers read it between batches so running ranges pause too.
func QueuePausedKey(queue string) string { return fmt.Sprintf(asynqPausedKeyFormat, queue) }

// jobKeys lists every per-job key. A new per-job key must be added here, or
// DeleteJob leaves it behind.
func (l *Ledger) jobKeys(job string) []string {
	return []string{
		l.PauseKey(job), l.SpecKey(job), l.MetaKey(job), l.CursorKey(job),
		l.DoneKey(job), l.FailedKey(job), l.StatsKey(job), l.AliveKey(job),
		l.OverridesKey(job), l.SlotsKey(job), l.RateStoredKey(job), l.LeaderKey(job),
		l.DecisionKey(job), l.BaselineKey(job), l.CommitsKey(job), l.SplitsKey(job),
		l.VerifyKey(job), l.HistoryKey(job), l.FenceKey(job), l.AuditKey(job),
		l.GuardOverrideKey(job), l.SeriesKey(job),
	}
}

func (l *Ledger) jobKey(job, suffix string) string {
	return l.prefix + "{" + job + "}:" + suffix
}

// Meta is the slicing of a job, fixed by its first start so that later
// starts re-enqueue exactly the same ranges.
type Meta struct {
	Queue string
	// Slicing cuts the key space into ranges 0 … Slicing.Ranges()-1. The
	// ledger stores it as keyspace encodes it and never interprets it.
	Slicing keyspace.Slicing
	// Ranges counts every range ID handed out: the slicing's, then two per
	// split (Split).
	Ranges int64
	// Created is when the job was first started.
	Created time.Time
	// Estimate is the planner's count of pending rows at the first start,
	// the denominator of progress and ETA.
	Estimate int64
	// DryRun marks a job whose batches roll back.
	DryRun bool
	// Finished is when the last range was marked done (Redis time), zero
	// while the job is not finished. Status freezes its averages there.
	Finished time.Time
	// Run names this start of the job: set with the meta, so a job
	// started again after cleanup (or after Redis lost its keys) is a new
	// run, and a range's cursor kept in the database's fence table by an
	// earlier run is not resumed from. "" for a job started before it.
	Run string
	// SpecSig is the signature of the spec stored with it (package
	// signing), written by every SaveJob in the same transaction as the
	// spec; "" when the enqueuer had no signing key.
	SpecSig string
}

// SaveJob stores the spec (JSON) and, when the job has no meta yet, its
// meta; it returns the meta in force (the stored one if there was one).
func (l *Ledger) SaveJob(ctx context.Context, job string, spec []byte, m Meta) (Meta, error) {
	created, err := l.rdb.HSetNX(ctx, l.MetaKey(job), "ranges", m.Ranges).Result()
	if err != nil {
		return Meta{}, fmt.Errorf("save job %s meta: %w", job, err)
	}
	_, err = l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if created {
			p.HSet(ctx, l.MetaKey(job), map[string]any{
				"run":      rand.Text(),
				"queue":    m.Queue,
				"slicing":  m.Slicing.Encode(),
				"created":  m.Created.UTC().Format(time.RFC3339),
				"estimate": m.Estimate,
				"dry_run":  strconv.FormatBool(m.DryRun),
			})
		} else {
			// The queue may move (e.g. after Redis lost the old one); the
			// slicing may not, or done marks would point at other keys.
			p.HSet(ctx, l.MetaKey(job), "queue", m.Queue)
		}
		p.HSet(ctx, l.MetaKey(job), "spec_sig", m.SpecSig)
		p.Set(ctx, l.SpecKey(job), spec, 0)
		return nil
	})
	if err != nil {
		return Meta{}, fmt.Errorf("save job %s: %w", job, err)
	}
	if err := l.rdb.SAdd(ctx, l.JobsKey(), job).Err(); err != nil {
		return Meta{}, fmt.Errorf("register job %s: %w", job, err)
	}
	return l.Meta(ctx, job)
}

// Meta returns the job's slicing, or ErrNotFound.
func (l *Ledger) Meta(ctx context.Context, job string) (Meta, error) {
	h, err := l.rdb.HGetAll(ctx, l.MetaKey(job)).Result()
	if err != nil {
		return Meta{}, fmt.Errorf("read job %s meta: %w", job, err)
	}
	if len(h) == 0 {
		return Meta{}, fmt.Errorf("job %s: %w", job, ErrNotFound)
	}
	m := Meta{Queue: h["queue"], Run: h["run"], SpecSig: h["spec_sig"]}
	if m.Ranges, err = strconv.ParseInt(h["ranges"], 10, 64); err != nil {
		return Meta{}, fmt.Errorf("job %s meta field ranges=%q is not a number; was %s edited by hand?", job, h["ranges"], l.MetaKey(job))
	}
	if m.Slicing, err = readSlicing(h); err != nil {
		return Meta{}, fmt.Errorf("job %s meta: %w; was %s edited by hand?", job, err, l.MetaKey(job))
	}
	m.Created, _ = time.Parse(time.RFC3339, h["created"])
	m.Estimate, _ = strconv.ParseInt(h["estimate"], 10, 64)
	m.DryRun = h["dry_run"] == "true"
	if sec, err := strconv.ParseInt(h["finished"], 10, 64); err == nil {
		m.Finished = time.Unix(sec, 0)
	}
	return m, nil
}

// readSlicing is the slicing of a meta hash: its slicing field, or for a
// job started before that field existed, its from, to and span fields.
func readSlicing(h map[string]string) (keyspace.Slicing, error) {
	if s, ok := h["slicing"]; ok {
		return keyspace.DecodeSlicing(s)
	}
	return keyspace.LegacySlicing(h["from"], h["to"], h["span"])
}

// Run returns the job's run (Meta.Run) alone: what a worker needs of the
// meta when it claims a range. "" for a job started before runs existed.
func (l *Ledger) Run(ctx context.Context, job string) (string, error) {
	run, err := l.rdb.HGet(ctx, l.MetaKey(job), "run").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("read job %s run: %w", job, err)
	}
	return run, nil
}

// SignedSpec returns the stored spec JSON and its signature (Meta.SpecSig,
// "" when unsigned) as one read, or ErrNotFound.
func (l *Ledger) SignedSpec(ctx context.Context, job string) (spec []byte, sig string, err error) {
	var sp, sg *redis.StringCmd
	_, err = l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		sp = p.Get(ctx, l.SpecKey(job))
		sg = p.HGet(ctx, l.MetaKey(job), "spec_sig")
		return nil
	})
	if errors.Is(sp.Err(), redis.Nil) {
		return nil, "", fmt.Errorf("job %s spec: %w", job, ErrNotFound)
	}
	if err := firstErr(sp, sg); err != nil {
		return nil, "", fmt.Errorf("read job %s spec: %w", job, err)
	}
	return []byte(sp.Val()), sg.Val(), nil
}

// Spec returns the stored spec JSON, or ErrNotFound.
func (l *Ledger) Spec(ctx context.Context, job string) ([]byte, error) {
	b, err := l.rdb.Get(ctx, l.SpecKey(job)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("job %s spec: %w", job, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read job %s spec: %w", job, err)
	}
	return b, nil
}

// Jobs lists every registered job name.
func (l *Ledger) Jobs(ctx context.Context) ([]string, error) {
	jobs, err := l.rdb.SMembers(ctx, l.JobsKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return jobs, nil
}

// DeleteJob removes every key of a job and its entry in the job list, and
// returns how many keys it deleted. The keys share one hash tag, so one DEL
// is legal on Redis Cluster. asynq's tasks of the job are not ledger keys:
// the caller removes them through asynq.
func (l *Ledger) DeleteJob(ctx context.Context, job string) (int64, error) {
	n, err := l.rdb.Del(ctx, l.jobKeys(job)...).Result()
	if err != nil {
		return 0, fmt.Errorf("delete keys of job %s: %w", job, err)
	}
	if err := l.rdb.SRem(ctx, l.JobsKey(), job).Err(); err != nil {
		return n, fmt.Errorf("unregister job %s: %w", job, err)
	}
	return n, nil
}

// Checkpoint returns the last committed key of a range; ok is false when the
// range has no checkpoint yet.
func (l *Ledger) Checkpoint(ctx context.Context, job string, rangeID int64) (key keyspace.Key, ok bool, err error) {
	s, err := l.rdb.HGet(ctx, l.CursorKey(job), id(rangeID)).Result()
	if errors.Is(err, redis.Nil) {
		return keyspace.Key{}, false, nil
	}
	if err != nil {
		return keyspace.Key{}, false, fmt.Errorf("read checkpoint %s range %d: %w", job, rangeID, err)
	}
	key, err = keyspace.DecodeKey(s)
	if err != nil {
		return keyspace.Key{}, false, fmt.Errorf("checkpoint %s range %d holds %q, not a key; delete field %d of %s to redo the range", job, rangeID, s, rangeID, l.CursorKey(job))
	}
	return key, true, nil
}

// Commit records a committed batch: the range's new checkpoint and the rows
// it wrote, the batch's commit time for the fleet's p95, and marks the job
// alive for aliveTTL (0 leaves the mark as it is), all in one script (atomic, one round trip). Call it
// only after the database COMMIT returned.
//
// token is the range's fencing token (Fence): a newer one stored refuses
// the checkpoint with ErrFenced, so a worker that stalled past its lease
// never writes its older cursor over the new owner's. Zero skips the check
// (a dry run, whose batches roll back, is not fenced).
func (l *Ledger) Commit(ctx context.Context, job string, rangeID, token int64, key keyspace.Key, rows int64, took, aliveTTL time.Duration) error {
	enc := key.Encode()
	var nowMS int64 // 0: the script asks Redis
	if now, ok := l.clock.now(); ok {
		nowMS = now.UnixMilli()
	}
	res, err := commitBatch.Run(ctx, l.rdb, []string{l.CursorKey(job), l.StatsKey(job), l.AliveKey(job), l.CommitsKey(job), l.FenceKey(job)},
		id(rangeID), enc, rows, max(aliveTTL.Milliseconds(), 0),
		strconv.FormatFloat(float64(took)/float64(time.Millisecond), 'f', 3, 64),
		CommitWindow.Milliseconds(), commitsKept, trimEvery, nowMS, token).Int()
	if err != nil {
		return fmt.Errorf("checkpoint %s range %d at key %s: %w", job, rangeID, key, err)
	}
	if res < 0 {
		return fmt.Errorf("checkpoint %s range %d at key %s (token %d): %w", job, rangeID, key, token, ErrFenced)
	}
	return nil
}

// commitBatch is Commit's one script. Every batch runs it, so it issues as
// few commands as it can (each counts in Redis's commandstats like a
// client's): the commit time is added with ZADD under pcall, and only a
// commits key left as a list by an older ebb (WRONGTYPE) is deleted and
// added to again, instead of asking every key for its TYPE first, and the
// commit's time on Redis's clock comes from the worker's last TIME reading
// (redisClock) instead of a TIME per batch. The
// commit-time set is trimmed (window, count, expiry) on the job's first
// batch and every trimEvery-th after it only: its reader filters by time
// and count itself, so a few extra members between trims change no p95,
// and the three trims were a third of the script's commands. The expiry is
// two windows, so an idle job's set still goes away by itself.
//
//	KEYS[1] cursor hash, KEYS[2] stats hash, KEYS[3] alive key, KEYS[4] commits,
//	KEYS[5] fence hash
//	ARGV[1] range ID, ARGV[2] encoded key, ARGV[3] rows, ARGV[4] alive TTL ms
//	(0: leave the alive key alone),
//	ARGV[5] commit time in ms (decimal), ARGV[6] window in ms, ARGV[7] commits kept,
//	ARGV[8] trimEvery, ARGV[9] Redis's time in ms as the worker knows it from
//	its last Controls (0: ask Redis), ARGV[10] fencing token (0: unfenced)
//	returns 1, or -1 when fenced out (nothing written)
var commitBatch = redis.NewScript(fencedLua("KEYS[5]", "ARGV[1]", "ARGV[10]", "-1") + `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], 'rows', ARGV[3])
local batches = redis.call('HINCRBY', KEYS[2], 'batches', 1)
if ARGV[4] ~= '0' then
  redis.call('SET', KEYS[3], 1, 'PX', ARGV[4])
end
local now = tonumber(ARGV[9])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local member = ARGV[5] .. ':' .. ARGV[1] .. ':' .. ARGV[2]
local added = redis.pcall('ZADD', KEYS[4], now, member)
if type(added) == 'table' and added.err then
  redis.call('DEL', KEYS[4])
  redis.call('ZADD', KEYS[4], now, member)
  batches = 1
end
if batches % tonumber(ARGV[8]) == 1 then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[6]))
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -tonumber(ARGV[7]) - 1)
  redis.call('PEXPIRE', KEYS[4], 2 * tonumber(ARGV[6]))
end
return 1
`)

// Retried counts one batch attempt that failed transiently and is retried,
// for status; the retry path is rare, so it costs a round trip only then.
func (l *Ledger) Retried(ctx context.Context, job string) error {
	if err := l.rdb.HIncrBy(ctx, l.StatsKey(job), "retries", 1).Err(); err != nil {
		return fmt.Errorf("count a retry of %s: %w", job, err)
	}
	return nil
}

// Touch marks the job alive without a commit (a range started).
func (l *Ledger) Touch(ctx context.Context, job string, ttl time.Duration) error {
	if err := l.rdb.Set(ctx, l.AliveKey(job), 1, ttl).Err(); err != nil {
		return fmt.Errorf("mark job %s alive: %w", job, err)
	}
	return nil
}

// markDone marks a range done, clears its failure and, when that was the
// last range, stamps the job's finish time once (Redis time, so worker
// clocks do not matter). A job that is not finished (done marks removed by
// hand to redo ranges) loses its stamp. A missing meta (the job was cleaned
// up) is not recreated.
//
// KEYS[1] done set, KEYS[2] failed hash, KEYS[3] meta hash, KEYS[4] fence hash
// ARGV[1] range ID, ARGV[2] fencing token (0: unfenced)
// Returns 1 when every range is done, else 0; -1 when fenced out.
var markDone = redis.NewScript(fencedLua("KEYS[4]", "ARGV[1]", "ARGV[2]", "-1") + `
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
local ranges = tonumber(redis.call('HGET', KEYS[3], 'ranges'))
if not ranges then
  return 0
end
if redis.call('SCARD', KEYS[1]) >= ranges then
  redis.call('HSETNX', KEYS[3], 'finished', redis.call('TIME')[1])
  return 1
end
redis.call('HDEL', KEYS[3], 'finished')
return 0
`)

// MarkDone marks a range finished and clears any old failure of it; the
// last range also records when the job finished (Meta.Finished). A newer
// fencing token than token (0: unfenced) refuses it with ErrFenced.
func (l *Ledger) MarkDone(ctx context.Context, job string, rangeID, token int64) error {
	res, err := markDone.Run(ctx, l.rdb, []string{l.DoneKey(job), l.FailedKey(job), l.MetaKey(job), l.FenceKey(job)}, id(rangeID), token).Int()
	if err != nil {
		return fmt.Errorf("mark %s range %d done: %w", job, rangeID, err)
	}
	if res < 0 {
		return fmt.Errorf("mark %s range %d done (token %d): %w", job, rangeID, token, ErrFenced)
	}
	return nil
}

// IsDone reports whether a range is finished.
func (l *Ledger) IsDone(ctx context.Context, job string, rangeID int64) (bool, error) {
	ok, err := l.rdb.SIsMember(ctx, l.DoneKey(job), id(rangeID)).Result()
	if err != nil {
		return false, fmt.Errorf("read done mark %s range %d: %w", job, rangeID, err)
	}
	return ok, nil
}

// DoneRanges returns the set of finished range IDs.
func (l *Ledger) DoneRanges(ctx context.Context, job string) (map[int64]bool, error) {
	ids, err := l.rdb.SMembers(ctx, l.DoneKey(job)).Result()
	if err != nil {
		return nil, fmt.Errorf("read done ranges of %s: %w", job, err)
	}
	out := make(map[int64]bool, len(ids))
	for _, s := range ids {
		if v, err := strconv.ParseInt(s, 10, 64); err == nil {
			out[v] = true
		}
	}
	return out, nil
}

// MarkFailed records why a range failed; status shows the reason.
func (l *Ledger) MarkFailed(ctx context.Context, job string, rangeID int64, reason string) error {
	if err := l.rdb.HSet(ctx, l.FailedKey(job), id(rangeID), reason).Err(); err != nil {
		return fmt.Errorf("mark %s range %d failed: %w", job, rangeID, err)
	}
	return nil
}

// ClearFailed forgets a range's failure when it is enqueued again.
func (l *Ledger) ClearFailed(ctx context.Context, job string, rangeID int64) error {
	if err := l.rdb.HDel(ctx, l.FailedKey(job), id(rangeID)).Err(); err != nil {
		return fmt.Errorf("clear failure of %s range %d: %w", job, rangeID, err)
	}
	return nil
}

// SetPause sets the pause flag of one job, or of every job when job is "".
func (l *Ledger) SetPause(ctx context.Context, job, value string) error {
	key := l.pauseKeyFor(job)
	if err := l.rdb.Set(ctx, key, value, 0).Err(); err != nil {
		return fmt.Errorf("set %s: %w", key, err)
	}
	return nil
}

// ClearPause removes the pause flag of one job, or the global one.
func (l *Ledger) ClearPause(ctx context.Context, job string) error {
	key := l.pauseKeyFor(job)
	if err := l.rdb.Del(ctx, key).Err(); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

func (l *Ledger) pauseKeyFor(job string) string {
	if job == "" {
		return l.GlobalPauseKey()
	}
	return l.PauseKey(job)
}

// PauseFlags are the raw values of the switches that pause a job. A missing
// key reads as "". Interpreting values is guard's business.
type PauseFlags struct {
	Global      string
	Job         string
	QueuePaused bool
}

// firstErr is the first error among cmds other than redis.Nil (absent key).
func firstErr(cmds ...redis.Cmder) error {
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
	}
	return nil
}

func id(rangeID int64) string { return strconv.FormatInt(rangeID, 10) }

// Reopen makes finished ranges run again (enqueuer repair): it removes
// their done marks, cursors and failures, and the job's finish time, in
// one transaction, so a range is never left done without the cursor it
// would resume from, nor the job stamped finished with ranges open.
func (l *Ledger) Reopen(ctx context.Context, job string, rangeIDs []int64) error {
	if len(rangeIDs) == 0 {
		return nil
	}
	ids := make([]string, len(rangeIDs))
	members := make([]any, len(rangeIDs))
	for i, r := range rangeIDs {
		ids[i], members[i] = id(r), id(r)
	}
	_, err := l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SRem(ctx, l.DoneKey(job), members...)
		p.HDel(ctx, l.CursorKey(job), ids...)
		p.HDel(ctx, l.FailedKey(job), ids...)
		p.HDel(ctx, l.MetaKey(job), "finished")
		return nil
	})
	if err != nil {
		return fmt.Errorf("reopen ranges %v of %s: %w", rangeIDs, job, err)
	}
	return nil
}

// asynqTaskKeyFormat is asynq's key, not ebb's: hibiken/asynq's
// internal/base builds a task's hash as TaskKey(qname, id) =
// "asynq:{" + qname + "}:t:" + id, with the task's state in its "state"
// field. The ledger only reads it, to tell status which unfinished ranges
// asynq still holds.
const asynqTaskKeyFormat = "asynq:{%s}:t:%s"

// TaskStates returns asynq's state ("pending", "active", "scheduled",
// "retry", "archived", "completed") of each task ID of queue, "" for a
// task asynq does not hold. One pipelined round trip per thousand IDs.
func (l *Ledger) TaskStates(ctx context.Context, queue string, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	for start := 0; start < len(ids); start += 1000 {
		chunk := ids[start:min(start+1000, len(ids))]
		cmds := make([]*redis.StringCmd, len(chunk))
		_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range chunk {
				cmds[i] = p.HGet(ctx, fmt.Sprintf(asynqTaskKeyFormat, queue, id), "state")
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("read asynq task states in queue %s: %w", queue, err)
		}
		for i, id := range chunk {
			out[id], _ = cmds[i].Result()
		}
	}
	return out, nil
}

// Memory returns Redis's used memory and its maxmemory (0: no limit), in
// bytes, from INFO memory.
func (l *Ledger) Memory(ctx context.Context) (used, limit int64, err error) {
	info, err := l.rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, 0, fmt.Errorf("read Redis's INFO memory: %w", err)
	}
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch k {
		case "used_memory":
			used, _ = strconv.ParseInt(v, 10, 64)
		case "maxmemory":
			limit, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return used, limit, nil
}
