// Package chunks owns key-space math: slicing a job's [from,to] into range
// tasks, where a range resumes, and the adaptive batch sizer. It imports nothing of ebb and
// does no I/O, so its invariants (every key covered exactly once, no overflow
// at the int64 bounds) are fuzzed directly.
package chunks

import (
	"fmt"
	"math"
)

// Range is an inclusive span of keys [Lo, Hi]; ID is its index in the job.
type Range struct {
	ID int64
	Lo int64
	Hi int64
}

func (r Range) String() string { return fmt.Sprintf("#%d [%d,%d]", r.ID, r.Lo, r.Hi) }

// Count is how many ranges of span keys cover [from,to].
func Count(from, to, span int64) (int64, error) {
	if err := check(from, to, span); err != nil {
		return 0, err
	}
	// The width of [from,to] can exceed MaxInt64, so count in uint64.
	width := uint64(to) - uint64(from) // keys minus one
	q := width / uint64(span)
	if q >= math.MaxInt64 {
		return 0, fmt.Errorf("range [%d,%d] with task_span %d has too many ranges; raise task_span", from, to, span)
	}
	return int64(q) + 1, nil
}

// At returns range i of the slicing of [from,to] by span, without building
// the whole list.
func At(from, to, span, i int64) (Range, error) {
	n, err := Count(from, to, span)
	if err != nil {
		return Range{}, err
	}
	if i < 0 || i >= n {
		return Range{}, fmt.Errorf("range %d out of bounds: the job has %d ranges", i, n)
	}
	lo := int64(uint64(from) + uint64(i)*uint64(span))
	hi := to
	// Is there room for a whole span before to? Compare widths in uint64.
	if uint64(to)-uint64(lo) >= uint64(span) {
		hi = int64(uint64(lo) + uint64(span) - 1)
	}
	return Range{ID: i, Lo: lo, Hi: hi}, nil
}

// IndexOf returns the index of the range of the slicing of [from,to] by span
// that holds key; false when key lies outside [from,to] or the slicing is
// invalid.
func IndexOf(from, to, span, key int64) (int64, bool) {
	if check(from, to, span) != nil || key < from || key > to {
		return 0, false
	}
	return int64((uint64(key) - uint64(from)) / uint64(span)), true
}

// Next is the first key after a committed key, and false when the committed
// key was the last one possible.
func Next(committed int64) (int64, bool) {
	if committed == math.MaxInt64 {
		return 0, false
	}
	return committed + 1, true
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
