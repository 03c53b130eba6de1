package keyspace

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Range is one range task's share of the key space, [Lo, Hi] inclusive; ID
// is its index in the job (range IDs are counters, not keys).
type Range struct {
	ID int64
	Lo Key
	Hi Key
}

func (r Range) String() string { return fmt.Sprintf("#%d [%s,%s]", r.ID, r.Lo, r.Hi) }

// Slicing is how a job's key space is cut into ranges. It is fixed at the
// job's first start and stored as one opaque string (Encode), so that every
// later start, worker and verify rebuilds exactly the same ranges by ID
// without a list of them stored anywhere.
type Slicing struct {
	// from, to and span slice the integer shape by arithmetic; n is the
	// number of ranges, checked when the slicing was made.
	from, to, span, n int64
}

// Slice cuts [from, to] into ranges of span keys (the job's task_span); the
// last range is cut at to.
func (s Space) Slice(from, to Key, span int64) (Slicing, error) {
	a, err := s.integer(from)
	if err != nil {
		return Slicing{}, err
	}
	b, err := s.integer(to)
	if err != nil {
		return Slicing{}, err
	}
	return intSlicing(a, b, span)
}

// Ranges is how many ranges the slicing has. Ranges made later by
// splitting (the ledger's splits) are not among them.
func (sl Slicing) Ranges() int64 { return sl.n }

// Span is how many keys one range spans.
func (sl Slicing) Span() int64 { return sl.span }

// Bounds are the first and last key of the sliced space.
func (sl Slicing) Bounds() (from, to Key) { return Int(sl.from), Int(sl.to) }

// Range returns range id of the slicing, without building the others.
func (sl Slicing) Range(id int64) (Range, error) {
	lo, hi, err := at(sl.from, sl.to, sl.span, id)
	if err != nil {
		return Range{}, err
	}
	return Range{ID: id, Lo: Int(lo), Hi: Int(hi)}, nil
}

// Containing returns the ID of the range that holds k; false when k lies
// outside the sliced space or is not a key of its shape.
func (sl Slicing) Containing(k Key) (int64, bool) {
	v, err := intOf(k)
	if err != nil {
		return 0, false
	}
	return indexOf(sl.from, sl.to, sl.span, v)
}

// Holds reports whether k lies in r, a range of this slicing or a half of
// a split one.
func (sl Slicing) Holds(r Range, k Key) bool {
	v, err1 := intOf(k)
	lo, err2 := intOf(r.Lo)
	hi, err3 := intOf(r.Hi)
	return err1 == nil && err2 == nil && err3 == nil && lo <= v && v <= hi
}

// Reslice is the same space cut into ranges of span keys: verify counts
// pending rows in chunks this way.
func (sl Slicing) Reslice(span int64) (Slicing, error) { return intSlicing(sl.from, sl.to, span) }

// Encode is the slicing as the one string the ledger stores.
func (sl Slicing) Encode() string {
	b, _ := json.Marshal(stored{Shape: shapeInt, From: Int(sl.from), To: Int(sl.to), Span: sl.span})
	return string(b)
}

// DecodeSlicing reads a slicing written by Encode.
func DecodeSlicing(s string) (Slicing, error) {
	var st stored
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		return Slicing{}, fmt.Errorf("slicing %q: %w", s, err)
	}
	if st.Shape != shapeInt {
		return Slicing{}, fmt.Errorf("slicing %q: %w %q", s, ErrShape, st.Shape)
	}
	from, err1 := intOf(st.From)
	to, err2 := intOf(st.To)
	if err := errors.Join(err1, err2); err != nil {
		return Slicing{}, fmt.Errorf("slicing %q: %w", s, err)
	}
	return intSlicing(from, to, st.Span)
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

// stored is the JSON of a Slicing. Shape names the slicer, so a later shape
// adds its own fields beside it.
type stored struct {
	Shape string `json:"shape"`
	From  Key    `json:"from"`
	To    Key    `json:"to"`
	Span  int64  `json:"span"`
}

// shapeInt is the integer shape, sliced by arithmetic.
const shapeInt = "int"

func intSlicing(from, to, span int64) (Slicing, error) {
	n, err := count(from, to, span)
	if err != nil {
		return Slicing{}, err
	}
	return Slicing{from: from, to: to, span: span, n: n}, nil
}
