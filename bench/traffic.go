package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Live traffic, open loop: requests arrive at a fixed rate whatever the
// database does, and each one's latency runs from when it was due, not
// from when a client got round to sending it. A closed loop (N clients,
// each waiting for its answer) slows its own arrivals when the database
// stalls and so hides the queueing a real app's users feel (coordinated
// omission).
//
// The mix is an order service's: mostly point reads of recent orders,
// some per-customer lists, some small updates of recent orders (the rows
// a backfill that walks the key upward reaches last).

const (
	// lateAfter makes a request late: a user has given up on a page by then.
	lateAfter = time.Second
	// requestTimeout fails a request outright.
	requestTimeout = 5 * time.Second
	// maxInFlight bounds the requests waiting at once; an arrival beyond
	// it counts as failed (the app would shed it).
	maxInFlight = 2000
	// histMax is the largest latency recorded, in microseconds.
	histMax = int64(60 * time.Second / time.Microsecond)
)

// second is one second of live traffic.
type second struct {
	At     time.Time `json:"at"`
	P50    float64   `json:"p50_ms"`
	P95    float64   `json:"p95_ms"`
	P99    float64   `json:"p99_ms"`
	Count  int64     `json:"count"`
	Late   int64     `json:"late"`
	Failed int64     `json:"failed"`
}

// recorder keeps one HDR histogram for the current second, one for the
// phase in progress, and a row per finished second.
type recorder struct {
	mu      sync.Mutex
	cur     *hdrhistogram.Histogram
	curLate int64
	curFail int64
	phase   *hdrhistogram.Histogram
	pLate   int64
	pFail   int64
	seconds []second
	// recent keeps the last few seconds for the live p95 the auto
	// strategies steer by.
	recent []*hdrhistogram.Histogram
}

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, histMax, 3) }

func newRecorder() *recorder {
	return &recorder{cur: newHist(), phase: newHist()}
}

// record adds one request's latency, or its failure.
func (r *recorder) record(d time.Duration, failed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if failed {
		r.curFail++
		r.pFail++
		return
	}
	us := min(max(d.Microseconds(), 1), histMax)
	_ = r.cur.RecordValue(us)
	_ = r.phase.RecordValue(us)
	if d > lateAfter {
		r.curLate++
		r.pLate++
	}
}

// tick closes the current second.
func (r *recorder) tick(at time.Time) second {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := second{At: at, P50: ms(r.cur, 50), P95: ms(r.cur, 95), P99: ms(r.cur, 99), Count: r.cur.TotalCount(), Late: r.curLate, Failed: r.curFail}
	r.seconds = append(r.seconds, s)
	r.recent = append(r.recent, r.cur)
	if len(r.recent) > 5 {
		r.recent = r.recent[1:]
	}
	r.cur, r.curLate, r.curFail = newHist(), 0, 0
	return s
}

// recentP95 is the p95 in ms over the last five whole seconds.
func (r *recorder) recentP95() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := newHist()
	for _, s := range r.recent {
		h.Merge(s)
	}
	return ms(h, 95)
}

// phaseStats ends the phase in progress and starts a new one.
type phaseStats struct {
	P50, P95, P99 float64
	Count         int64
	Late, Failed  int64
}

func (r *recorder) endPhase() phaseStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := phaseStats{P50: ms(r.phase, 50), P95: ms(r.phase, 95), P99: ms(r.phase, 99), Count: r.phase.TotalCount(), Late: r.pLate, Failed: r.pFail}
	r.phase, r.pLate, r.pFail = newHist(), 0, 0
	return p
}

func (r *recorder) allSeconds() []second {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]second(nil), r.seconds...)
}

func ms(h *hdrhistogram.Histogram, q float64) float64 {
	return float64(h.ValueAtQuantile(q)) / 1000
}

// traffic runs live requests against pool at perSec arrivals a second
// until ctx ends, and ticks rec every second.
func traffic(ctx context.Context, pool *pgxpool.Pool, rows int64, perSec int, rec *recorder) (wait func()) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxInFlight)
	interval := time.Second / time.Duration(perSec)
	read := "SELECT id, status, amount_cents, created_at FROM " + table + " WHERE id = $1"
	list := "SELECT id, status, amount_cents FROM " + table + " WHERE customer_id = $1 ORDER BY created_at DESC LIMIT 20"
	update := "UPDATE " + table + " SET status = $2 WHERE id = $1"
	statuses := []string{"paid", "shipped", "delivered", "returned"}
	recent := max(rows/10, 1)

	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case at := <-t.C:
				rec.tick(at)
			}
		}
	})
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		due := time.Now()
		for n := 0; ; n++ {
			due = due.Add(interval)
			if d := time.Until(due); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			} else if ctx.Err() != nil {
				return
			}
			kind, id, customer, status := rng.IntN(100), rows-rng.Int64N(recent), rng.Int64N(customers(rows))+1, statuses[rng.IntN(len(statuses))]
			select {
			case sem <- struct{}{}:
			default:
				rec.record(0, true)
				continue
			}
			start := due
			wg.Go(func() {
				defer func() { <-sem }()
				rctx, cancel := context.WithTimeout(ctx, requestTimeout)
				defer cancel()
				var err error
				switch {
				case kind < 80:
					var (
						gotID, amount int64
						st            string
						at            time.Time
					)
					err = pool.QueryRow(rctx, read, id).Scan(&gotID, &st, &amount, &at)
				case kind < 95:
					var r pgx.Rows
					r, err = pool.Query(rctx, list, customer)
					if err == nil {
						for r.Next() {
						}
						r.Close()
						err = r.Err()
					}
				default:
					_, err = pool.Exec(rctx, update, id, status)
				}
				if ctx.Err() != nil {
					return // stopping the traffic, not a failed request
				}
				rec.record(time.Since(start), err != nil && !errors.Is(err, context.Canceled))
			})
		}
	})
	return wg.Wait
}
