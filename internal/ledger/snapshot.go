package ledger

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Snapshot is everything the ledger knows about a job's progress, read in
// one round trip so the numbers agree with each other.
type Snapshot struct {
	Meta       Meta
	RangesDone int64
	Failed     []Failure
	Rows       int64
	Batches    int64
	// Retries counts batch attempts that failed transiently and were retried.
	Retries     int64
	Alive       bool
	Pause       PauseFlags
	SpecPresent bool
}

// Failure is a range that failed and why.
type Failure struct {
	Range  int64  `json:"range"`
	Reason string `json:"reason"`
}

// Snapshot reads a job's progress, or ErrNotFound.
func (l *Ledger) Snapshot(ctx context.Context, job string) (Snapshot, error) {
	m, err := l.Meta(ctx, job)
	if err != nil {
		return Snapshot{}, err
	}
	var (
		done          *redis.IntCmd
		failed, stats *redis.MapStringStringCmd
		alive, spec   *redis.IntCmd
		gp, jp        *redis.StringCmd
		qp            *redis.IntCmd
	)
	_, err = l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		done = p.SCard(ctx, l.DoneKey(job))
		failed = p.HGetAll(ctx, l.FailedKey(job))
		stats = p.HGetAll(ctx, l.StatsKey(job))
		alive = p.Exists(ctx, l.AliveKey(job))
		spec = p.Exists(ctx, l.SpecKey(job))
		gp = p.Get(ctx, l.GlobalPauseKey())
		jp = p.Get(ctx, l.PauseKey(job))
		qp = p.Exists(ctx, QueuePausedKey(m.Queue))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Snapshot{}, fmt.Errorf("read progress of %s: %w", job, err)
	}
	if err := firstErr(done, failed, stats, alive, spec, gp, jp, qp); err != nil {
		return Snapshot{}, fmt.Errorf("read progress of %s: %w", job, err)
	}
	s := Snapshot{
		Meta:        m,
		RangesDone:  done.Val(),
		Alive:       alive.Val() > 0,
		SpecPresent: spec.Val() > 0,
		Pause:       PauseFlags{Global: gp.Val(), Job: jp.Val(), QueuePaused: qp.Val() > 0},
	}
	s.Rows, _ = strconv.ParseInt(stats.Val()["rows"], 10, 64)
	s.Batches, _ = strconv.ParseInt(stats.Val()["batches"], 10, 64)
	s.Retries, _ = strconv.ParseInt(stats.Val()["retries"], 10, 64)
	for k, v := range failed.Val() {
		r, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			continue
		}
		s.Failed = append(s.Failed, Failure{Range: r, Reason: v})
	}
	sort.Slice(s.Failed, func(i, j int) bool { return s.Failed[i].Range < s.Failed[j].Range })
	return s, nil
}
