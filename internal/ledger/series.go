package ledger

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// SeriesKept caps a job's series: at one point every SeriesEvery (the
// guard leader's checks, thinned), twelve hours of a job's life.
const SeriesKept = 2880

// SeriesKey is a list of the job's measured points (JSON, newest first):
// the fleet's rows/s, the guard's state and every rule's signal, as the
// guard's leader saw them at a check. The on-call page charts it; it
// outlives a page reload and a worker restart.
func (l *Ledger) SeriesKey(job string) string { return l.jobKey(job, "series") }

// RecordSeries adds a point to job's series and trims it to SeriesKept,
// in one transaction.
func (l *Ledger) RecordSeries(ctx context.Context, job string, point []byte) error {
	_, err := l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, l.SeriesKey(job), point)
		p.LTrim(ctx, l.SeriesKey(job), 0, SeriesKept-1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("record a point of %s's series: %w", job, err)
	}
	return nil
}

// Series returns the newest n points of job's series, newest first.
func (l *Ledger) Series(ctx context.Context, job string, n int64) ([][]byte, error) {
	vals, err := l.rdb.LRange(ctx, l.SeriesKey(job), 0, n-1).Result()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", l.SeriesKey(job), err)
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		out[i] = []byte(v)
	}
	return out, nil
}
