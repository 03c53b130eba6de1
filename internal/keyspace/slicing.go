package keyspace

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Range is one range task's share of the key space, [Lo, Hi] inclusive
// unless After; ID is its index in the job (range IDs are counters, not
// keys).
type Range struct {
	ID int64 `json:"id"`
	Lo Key   `json:"lo"`
	Hi Key   `json:"hi"`
	// After makes Lo exclusive: the range is (Lo, Hi], read from the first
	// key strictly after Lo. Only text ranges past the first have it
	// (text has no key just below a split point to end the range before
	// at), so integer and uuid ranges are what they always were.
	After bool
}

func (r Range) String() string {
	if r.After {
		return fmt.Sprintf("#%d (%s,%s]", r.ID, r.Lo, r.Hi)
	}
	return fmt.Sprintf("#%d [%s,%s]", r.ID, r.Lo, r.Hi)
}

// Slicing is how a job's key space is cut into ranges. It is fixed at the
// job's first start and stored as one opaque string (Encode), so that every
// later start, worker and verify rebuilds exactly the same ranges by ID
// without a list of them stored anywhere.
type Slicing struct {
	// impl is the shape's slicing; nil is the zero integer slicing (no
	// ranges), so a zero Slicing behaves as it always has.
	impl slicer
}

// slicer is one shape's slicing: what Slicing's methods ask of it.
type slicer interface {
	ranges() int64
	taskSpan() int64
	bounds() (from, to Key)
	at(id int64) (Range, error)
	containing(k Key) (int64, bool)
	holds(r Range, k Key) bool
	reslice(span int64) (Slicing, error)
	stored() stored
}

// Slice cuts [from, to] into ranges of about span keys (the job's
// task_span). An integer key is cut by arithmetic into ranges of exactly
// span keys, the last cut at to; a uuid key into about rows/span ranges of
// equal 128-bit width, rows being the row estimate Open read.
func (s Space) Slice(from, to Key, span int64) (Slicing, error) {
	return s.shape().slice(from, to, span, s.rows)
}

// Ranges is how many ranges the slicing has. Ranges made later by
// splitting (the ledger's splits) are not among them.
func (sl Slicing) Ranges() int64 { return sl.get().ranges() }

// Span is the task_span the slicing was made with: how many keys one range
// spans for an integer key, how many rows it holds about for a uuid key.
func (sl Slicing) Span() int64 { return sl.get().taskSpan() }

// Bounds are the first and last key of the sliced space.
func (sl Slicing) Bounds() (from, to Key) { return sl.get().bounds() }

// Range returns range id of the slicing, without building the others.
func (sl Slicing) Range(id int64) (Range, error) { return sl.get().at(id) }

// Containing returns the ID of the range that holds k; false when k lies
// outside the sliced space or is not a key of its shape.
func (sl Slicing) Containing(k Key) (int64, bool) { return sl.get().containing(k) }

// Holds reports whether k lies in r, a range of this slicing or a half of
// a split one.
func (sl Slicing) Holds(r Range, k Key) bool { return sl.get().holds(r, k) }

// Reslice is the same space cut into ranges of span keys: verify counts
// pending rows in chunks this way.
func (sl Slicing) Reslice(span int64) (Slicing, error) { return sl.get().reslice(span) }

// Encode is the slicing as the one string the ledger stores.
func (sl Slicing) Encode() string {
	b, _ := json.Marshal(sl.get().stored())
	return string(b)
}

// DecodeSlicing reads a slicing written by Encode.
func DecodeSlicing(s string) (Slicing, error) {
	var st stored
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		return Slicing{}, fmt.Errorf("slicing %q: %w", s, err)
	}
	var sl Slicing
	var err error
	switch st.Shape {
	case shapeInt:
		sl, err = decodeIntSlicing(st)
	case shapeUUID:
		sl, err = decodeUUIDSlicing(st)
	case shapeText, shapePoints:
		sl, err = decodePointSlicing(st)
	default:
		err = fmt.Errorf("%w %q", ErrShape, st.Shape)
	}
	if err != nil {
		return Slicing{}, fmt.Errorf("slicing %q: %w", s, err)
	}
	return sl, nil
}

// LegacySlicing rebuilds the slicing of a job started before slicings were
// stored whole: its meta held from, to and span as decimal fields.
func LegacySlicing(from, to, span string) (Slicing, error) {
	var v [3]int64
	for i, s := range []string{from, to, span} {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return Slicing{}, fmt.Errorf("legacy slicing field %q is not a number", s)
		}
		v[i] = n
	}
	return intSlicing(v[0], v[1], v[2])
}

// stored is the JSON of a Slicing. Shape names the slicer, so each shape
// adds its own fields beside it; omitempty keeps an integer slicing's JSON
// what it was before other shapes.
type stored struct {
	Shape string `json:"shape"`
	From  Key    `json:"from"`
	To    Key    `json:"to"`
	Span  int64  `json:"span"`
	// Rows and Ranges fix a uuid slicing: the row estimate it was cut by
	// and the number of ranges that gave.
	Rows   int64 `json:"rows,omitempty"`
	Ranges int64 `json:"ranges,omitempty"`
	// Points fix a slicing of an ordered key: its split points, read from
	// the database at the first start, ascending in the key's order.
	Points []Key `json:"points,omitempty"`
}

// get is the slicing's shape, the zero integer slicing when none was set.
func (sl Slicing) get() slicer {
	if sl.impl == nil {
		return intSlices{}
	}
	return sl.impl
}
