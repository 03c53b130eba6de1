package keyspace

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// SliceTable cuts [from, to] of table (a quoted name) into ranges of about
// span keys, reading split points from the database where the shape has
// no arithmetic for them, without scanning the table: calendar windows
// (window: 1h) for a time key, the histogram of a one-column ordered key,
// or a TABLESAMPLE of a composite or never-analyzed key. Integer and uuid
// keys are cut by arithmetic, as Slice does. The slicing is stored at the
// first start, so this runs once per job.
func (s Space) SliceTable(ctx context.Context, q Querier, table string, from, to Key, span int64, window Window) (Slicing, error) {
	sh, ordered := s.shape().(orderedShape)
	switch {
	case !window.IsZero() && (!ordered || !timeTypes[sh.types[0]]):
		return Slicing{}, fmt.Errorf("window: %s slices a time key; key %s is %s: %w: use task_span instead, or key a date, timestamp or timestamptz column", window, s.Columns(), s.Shape(), ErrShape)
	case !window.IsZero():
		points, err := s.windowPoints(ctx, q, sh, table, from, to, window)
		if err != nil {
			return Slicing{}, err
		}
		return sh.pointSlicing(from, to, span, s.rows, points)
	case !ordered || len(sh.hist) > 2:
		return s.Slice(from, to, span)
	}
	n := rangeCount(s.rows, span)
	if n < 2 {
		return sh.pointSlicing(from, to, span, s.rows, nil)
	}
	sample, err := s.sampleKeys(ctx, q, table, from, to, n)
	if err != nil {
		return Slicing{}, err
	}
	return sh.pointSlicing(from, to, span, s.rows, thin(sample, n))
}

// Split halves what is left of a range, [lo, hi] with lo a key read from
// the table, for a range that keeps timing out at lo. Integer and uuid
// keys halve by arithmetic (Halve); other keys ask the index for the
// middle key of the rows in [lo, hi] (the lower middle, so two rows split
// into one each): the halves are [lo, mid] and (mid, hi]. ok is false when
// the range holds one key (or none).
func (s Space) Split(ctx context.Context, q Querier, table string, lo, hi Key) (first, second Range, ok bool, err error) {
	if _, ordered := s.shape().(orderedShape); !ordered {
		return s.Halve(lo, hi)
	}
	args, err := s.Args(lo, hi)
	if err != nil {
		return Range{}, Range{}, false, err
	}
	pred := s.From(1)
	rows, err := q.Query(ctx, fmt.Sprintf(
		"SELECT %[1]s FROM %[2]s WHERE %[3]s ORDER BY %[4]s OFFSET (SELECT greatest(count(*) - 1, 0) FROM (SELECT 1 FROM %[2]s WHERE %[3]s LIMIT %[5]d) c) / 2 LIMIT 1",
		s.Select(), table, pred, s.Columns(), splitCountCap), args...)
	if err != nil {
		return Range{}, Range{}, false, fmt.Errorf("probe the middle key of [%s,%s]: %w", lo, hi, err)
	}
	mids, err := s.CollectKeys(rows)
	if err != nil {
		return Range{}, Range{}, false, fmt.Errorf("probe the middle key of [%s,%s]: %w", lo, hi, err)
	}
	// The middle of two rows is the first: [lo, lo] and (lo, hi] free the
	// second row from a lock held on the first.
	if len(mids) == 0 || mids[0].Equal(hi) {
		return Range{}, Range{}, false, nil
	}
	return Range{Lo: lo, Hi: mids[0]}, Range{Lo: mids[0], Hi: hi, After: true}, true, nil
}

// splitCountCap bounds the count behind a middle key: a range is about
// task_span rows, and past a million the middle of the first million is
// as good a place to cut.
const splitCountCap = 1_000_000

// sampleTarget is how many keys a TABLESAMPLE aims for per range: enough
// that each split point is a quantile of dozens of keys.
const sampleTarget = 50

// minSamplePages is the fewest pages a sample reads: SYSTEM picks whole
// pages at random, and a 40-page table sampled at 5 % read one page or
// none, and was cut into one range. A table this small is read whole.
const minSamplePages = 200

// maxWindows refuses a window so short it would cut the key into more
// ranges than a slicing should hold.
const maxWindows = 100_000

// timeTypes are the column types window: slices.
var timeTypes = map[string]bool{"date": true, "timestamp without time zone": true, "timestamp with time zone": true}

// sampleKeys reads keys in [from, to] from a TABLESAMPLE of about
// sampleTarget keys per range and at least minSamplePages pages (SYSTEM:
// whole pages, not a scan), ascending in the key's order. A skewed key
// (one tenant holding most rows) gets most points where most rows are.
func (s Space) sampleKeys(ctx context.Context, q Querier, table string, from, to Key, n int64) ([]Key, error) {
	pct := 100.0
	if s.rows > 0 && s.pages > minSamplePages {
		byRows := 100 * float64(n*sampleTarget) / float64(s.rows)
		byPages := 100 * float64(minSamplePages) / float64(s.pages)
		pct = min(100, max(byRows, byPages))
	}
	args, err := s.Args(from, to)
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, fmt.Sprintf("SELECT %s FROM %s TABLESAMPLE SYSTEM (%g) WHERE %s ORDER BY %s",
		s.Select(), table, pct, s.From(1), s.Columns()), args...)
	if err != nil {
		return nil, fmt.Errorf("sample the key of %s: %w", table, err)
	}
	keys, err := s.CollectKeys(rows)
	if err != nil {
		return nil, fmt.Errorf("sample the key of %s: %w", table, err)
	}
	return keys, nil
}

// windowPoints reads, for the start of each calendar window after the
// first, the last key before it: one index probe per window, in one
// statement. Range i is then the rows of window i exactly, as they stand
// at the first start; empty windows give no range.
func (s Space) windowPoints(ctx context.Context, q Querier, sh orderedShape, table string, from, to Key, w Window) ([]Key, error) {
	series := "timestamp"
	if sh.types[0] == "timestamp with time zone" {
		series = "timestamptz"
	}
	first := pgx.Identifier{s.cols[0]}.Sanitize()
	start := fmt.Sprintf("date_trunc('%s', $1::%s::%s)", w.unit, sh.types[0], series)
	var count float64
	if err := q.QueryRow(ctx, fmt.Sprintf("SELECT extract(epoch FROM ($2::%s::%s - %s)) / extract(epoch FROM '%s'::interval)",
		sh.types[0], series, start, w.interval()), from.vals[0], to.vals[0]).Scan(&count); err != nil {
		return nil, fmt.Errorf("count the %s windows of %s: %w", w, table, err)
	}
	if count > maxWindows {
		return nil, fmt.Errorf("window: %s cuts [%s, %s] into about %.0f windows, more than %d: %w: use a longer window", w, from, to, count, maxWindows, ErrShape)
	}
	args, err := s.Args(from)
	if err != nil {
		return nil, err
	}
	args = append([]any{from.vals[0], to.vals[0]}, args...)
	rows, err := q.Query(ctx, fmt.Sprintf(`
		SELECT p.* FROM generate_series(%[1]s + '%[2]s'::interval, $2::%[3]s::%[4]s, '%[2]s'::interval) AS b(t)
		CROSS JOIN LATERAL (SELECT %[5]s FROM %[6]s WHERE %[7]s < b.t AND (%[8]s) >= (%[9]s) ORDER BY %[10]s LIMIT 1) p
		ORDER BY b.t`,
		start, w.interval(), sh.types[0], series,
		s.Select(), table, first, s.Columns(), s.placeholders(3), s.Descending()), args...)
	if err != nil {
		return nil, fmt.Errorf("read the %s windows of %s: %w", w, table, err)
	}
	keys, err := s.CollectKeys(rows)
	if err != nil {
		return nil, fmt.Errorf("read the %s windows of %s: %w", w, table, err)
	}
	var points []Key
	for _, k := range keys {
		if (len(points) == 0 || !points[len(points)-1].Equal(k)) && !k.Equal(to) {
			points = append(points, k)
		}
	}
	return points, nil
}

// CanWindow reports whether window: can slice the key: its first column
// is a date, timestamp or timestamptz.
func (s Space) CanWindow() bool {
	sh, ok := s.shape().(orderedShape)
	return ok && timeTypes[sh.types[0]]
}
