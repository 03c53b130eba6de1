package rangetask_test

import (
	"reflect"
	"testing"

	"github.com/ebbhq/ebb/internal/rangetask"
)

// FuzzDecode: no task body makes the decoder panic, and every body it
// accepts encodes back to a payload that decodes the same. Seeds: below
// and testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"job":"fill","range":3,"lo":3001,"hi":4000}`,
		`{"job":"fill","range":0,"lo":"a","hi":"m","after":true}`,
		`{"job":"fill","range":1,"lo":["1","a"],"hi":["1","z"],"sig":"00ff"}`,
		`{"job":"fill","range":1,"lo":5,"hi":1}`, `{"job":"","range":1}`, `{"job":"x","extra":1}`, `null`, `[]`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := rangetask.Decode(body)
		if err != nil {
			return
		}
		again, err := p.Encode()
		if err != nil {
			t.Fatalf("accepted payload does not encode: %v", err)
		}
		q, err := rangetask.Decode(again)
		if err != nil {
			t.Fatalf("re-encoded payload refused: %v (%s)", err, again)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip changed the payload: %+v → %+v", p, q)
		}
	})
}
