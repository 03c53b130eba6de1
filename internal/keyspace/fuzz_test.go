package keyspace_test

import (
	"strconv"
	"testing"

	"github.com/ebbhq/ebb/internal/keyspace"
)

// FuzzSliceInt: slicing any integer range never panics, and the ranges it
// cuts tile [from, to] exactly: the first starts at from, the last ends at
// to, neighbours meet with no gap or overlap, and the range Containing
// finds for a key holds it. Seeds: below and testdata/fuzz/FuzzSliceInt.
func FuzzSliceInt(f *testing.F) {
	f.Add(int64(1), int64(1000), int64(100), int64(250))
	f.Add(int64(-9223372036854775808), int64(9223372036854775807), int64(1<<62), int64(0))
	f.Add(int64(5), int64(5), int64(1), int64(5))
	f.Add(int64(10), int64(1), int64(3), int64(2))
	f.Add(int64(0), int64(9223372036854775807), int64(1), int64(7))
	sp, err := keyspace.New("id")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, from, to, span, key int64) {
		sl, err := sp.Slice(keyspace.Int(from), keyspace.Int(to), span)
		if err != nil {
			return
		}
		n := sl.Ranges()
		if n < 1 {
			t.Fatalf("[%d,%d]/%d: %d ranges", from, to, span, n)
		}
		first, err := sl.Range(0)
		if err != nil || !first.Lo.Equal(keyspace.Int(from)) {
			t.Fatalf("first range %v, %v; want it to start at %d", first, err, from)
		}
		last, err := sl.Range(n - 1)
		if err != nil || !last.Hi.Equal(keyspace.Int(to)) {
			t.Fatalf("last range %v, %v; want it to end at %d", last, err, to)
		}
		for _, i := range []int64{0, n / 2, n - 2} {
			if i < 0 || i+1 >= n {
				continue
			}
			a, err1 := sl.Range(i)
			b, err2 := sl.Range(i + 1)
			if err1 != nil || err2 != nil {
				t.Fatalf("range %d or %d: %v %v", i, i+1, err1, err2)
			}
			if !keyspace.Int(mustInt(t, a.Hi)+1).Equal(b.Lo) {
				t.Fatalf("ranges %d %v and %d %v do not meet", i, a, i+1, b)
			}
		}
		if key < from || key > to {
			if _, ok := sl.Containing(keyspace.Int(key)); ok {
				t.Fatalf("key %d outside [%d,%d] found a range", key, from, to)
			}
			return
		}
		id, ok := sl.Containing(keyspace.Int(key))
		if !ok {
			t.Fatalf("key %d in [%d,%d] found no range", key, from, to)
		}
		r, err := sl.Range(id)
		if err != nil || !sl.Holds(r, keyspace.Int(key)) {
			t.Fatalf("range %d %v does not hold key %d (%v)", id, r, key, err)
		}
		if _, err := keyspace.DecodeSlicing(sl.Encode()); err != nil {
			t.Fatalf("slicing does not decode its own encoding: %v", err)
		}
	})
}

func mustInt(t *testing.T, k keyspace.Key) int64 {
	t.Helper()
	v, err := strconv.ParseInt(k.Values()[0], 10, 64)
	if err != nil {
		t.Fatalf("key %v is not an integer: %v", k, err)
	}
	return v
}
