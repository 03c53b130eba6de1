package keyspace

import (
	"fmt"
	"math"
)

// The integer shape's arithmetic. All bounds are inclusive; widths and
// offsets are computed in uint64, where two's-complement wrap-around gives
// the right answer even for [MinInt64, MaxInt64] (see README.md).

// count is how many ranges of span keys cover [from,to].
func count(from, to, span int64) (int64, error) {
	if err := check(from, to, span); err != nil {
		return 0, err
	}
	width := uint64(to) - uint64(from) // keys minus one
	q := width / uint64(span)
	if q >= math.MaxInt64 {
		return 0, fmt.Errorf("range [%d,%d] with task_span %d has too many ranges; raise task_span", from, to, span)
	}
	return int64(q) + 1, nil
}

// at returns the bounds of range i of the slicing of [from,to] by span.
func at(from, to, span, i int64) (lo, hi int64, err error) {
	n, err := count(from, to, span)
	if err != nil {
		return 0, 0, err
	}
	if i < 0 || i >= n {
		return 0, 0, fmt.Errorf("range %d out of bounds: the job has %d ranges", i, n)
	}
	lo = int64(uint64(from) + uint64(i)*uint64(span))
	hi = to
	// Is there room for a whole span before to? Compare widths in uint64.
	if uint64(to)-uint64(lo) >= uint64(span) {
		hi = int64(uint64(lo) + uint64(span) - 1)
	}
	return lo, hi, nil
}

// indexOf returns the index of the range that holds key; false when key
// lies outside [from,to] or the slicing is invalid.
func indexOf(from, to, span, key int64) (int64, bool) {
	if check(from, to, span) != nil || key < from || key > to {
		return 0, false
	}
	return int64((uint64(key) - uint64(from)) / uint64(span)), true
}

func check(from, to, span int64) error {
	if span < 1 {
		return fmt.Errorf("task_span %d: must be at least 1", span)
	}
	if from > to {
		return fmt.Errorf("range [%d,%d] is empty: from is above to", from, to)
	}
	return nil
}
