package keyspace

import "testing"

// BenchmarkSlicingRange measures what start, every worker's split and
// verify pay per range of an 80,000,000-key integer job sliced into
// 800 ranges: rebuilding a range by ID from the stored slicing, its
// stored text decoded, and finding the range that holds a key.
func BenchmarkSlicingRange(b *testing.B) {
	s, err := New("id")
	if err != nil {
		b.Fatal(err)
	}
	sl, err := s.Slice(Int(1), Int(80_000_000), 100_000)
	if err != nil {
		b.Fatal(err)
	}
	enc := sl.Encode()
	n := sl.Ranges()
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		back, err := DecodeSlicing(enc)
		if err != nil {
			b.Fatal(err)
		}
		r, err := back.Range(i % n)
		if err != nil {
			b.Fatal(err)
		}
		if id, ok := back.Containing(r.Hi); !ok || id != i%n {
			b.Fatalf("range %d holds its own last key in %d", i%n, id)
		}
		i++
	}
}
