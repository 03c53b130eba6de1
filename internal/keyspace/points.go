package keyspace

import "fmt"

// shapePoints names a slicing cut at stored split points (every ordered
// key); shapeText is the name slicings of one text column were stored
// under before composite keys, read the same way.
const (
	shapePoints = "points"
	shapeText   = "text"
)

// pointSlices is [from, to] cut at stored points, ascending in the key's
// order in the database: range 0 is [from, p_1], range i > 0 is
// (p_i, p_{i+1}], the last ending at to.
type pointSlices struct {
	from, to   Key
	span, rows int64
	points     []Key
}

func newPointSlices(from, to Key, span, rows int64, points []Key) (pointSlices, error) {
	if span < 1 {
		return pointSlices{}, fmt.Errorf("task_span %d: must be at least 1", span)
	}
	for _, k := range append([]Key{from, to}, points...) {
		if k.IsZero() || len(k.vals) != len(from.vals) {
			return pointSlices{}, fmt.Errorf("slicing point %q: %w: every point needs one value per key column", k, ErrBadKey)
		}
	}
	return pointSlices{from: from, to: to, span: span, rows: rows, points: points}, nil
}

func decodePointSlicing(st stored) (Slicing, error) {
	sl, err := newPointSlices(st.From, st.To, st.Span, st.Rows, st.Points)
	if err != nil {
		return Slicing{}, err
	}
	return Slicing{impl: sl}, nil
}

func (sl pointSlices) ranges() int64          { return int64(len(sl.points)) + 1 }
func (sl pointSlices) taskSpan() int64        { return sl.span }
func (sl pointSlices) bounds() (from, to Key) { return sl.from, sl.to }

// at is [from, p_1] for range 0 and (p_id, p_id+1] after it, the last
// range ending at to.
func (sl pointSlices) at(id int64) (Range, error) {
	n := sl.ranges()
	if id < 0 || id >= n {
		return Range{}, fmt.Errorf("range %d out of bounds: the job has %d ranges", id, n)
	}
	r := Range{ID: id, Lo: sl.from, Hi: sl.to}
	if id > 0 {
		r.Lo, r.After = sl.points[id-1], true
	}
	if id < n-1 {
		r.Hi = sl.points[id]
	}
	return r, nil
}

// containing cannot order keys outside the database; it finds only a key
// that is a range's upper bound (or from), and says false for any other.
func (sl pointSlices) containing(k Key) (int64, bool) {
	if k.Equal(sl.from) {
		return 0, true
	}
	for i := int64(0); i < sl.ranges(); i++ {
		if r, _ := sl.at(i); r.Hi.Equal(k) {
			return i, true
		}
	}
	return 0, false
}

// holds, like containing, knows only a range's own bounds.
func (sl pointSlices) holds(r Range, k Key) bool {
	return k.Equal(r.Hi) || (!r.After && k.Equal(r.Lo))
}

// reslice keeps every m-th stored point, m being span over the stored
// span: the points are not read again, so a finer span than the first
// start's gets the stored ranges.
func (sl pointSlices) reslice(span int64) (Slicing, error) {
	m := max(span/max(sl.span, 1), 1)
	var points []Key
	for i := m - 1; i < int64(len(sl.points)); i += m {
		points = append(points, sl.points[i])
	}
	out, err := newPointSlices(sl.from, sl.to, span, sl.rows, points)
	if err != nil {
		return Slicing{}, err
	}
	return Slicing{impl: out}, nil
}

func (sl pointSlices) stored() stored {
	name := shapePoints
	if len(sl.from.vals) == 1 {
		name = shapeText // what a one-column slicing has always been stored as
	}
	return stored{Shape: name, From: sl.from, To: sl.to, Span: sl.span, Rows: sl.rows, Points: sl.points}
}
