package keyspace

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Key is one key tuple: each key column's value in PostgreSQL's text form,
// in the order of the job's key columns. The zero Key has no columns and
// stands for "no key". A Key is a value; its methods never modify it.
type Key struct {
	vals []string
}

// NewKey returns the key with these column values, in PostgreSQL's text
// form.
func NewKey(vals ...string) Key { return Key{vals: append([]string(nil), vals...)} }

// Int is the key of a one-column integer shape. The job file's integer
// bounds (range.from, range.to) come in through it.
func Int(v int64) Key { return Key{vals: []string{strconv.FormatInt(v, 10)}} }

// Values returns a copy of the key's column values.
func (k Key) Values() []string { return append([]string(nil), k.vals...) }

// IsZero reports whether k is the zero Key (no columns).
func (k Key) IsZero() bool { return len(k.vals) == 0 }

// Equal reports whether two keys have the same columns with the same text.
func (k Key) Equal(o Key) bool {
	if len(k.vals) != len(o.vals) {
		return false
	}
	for i := range k.vals {
		if k.vals[i] != o.vals[i] {
			return false
		}
	}
	return true
}

// String is the key's natural text: the value of a one-column key, "(a, b)"
// for several columns, "" for the zero Key. Status, logs and reports print
// keys this way; it is not an encoding (use Encode).
func (k Key) String() string {
	if len(k.vals) == 1 {
		return k.vals[0]
	}
	if len(k.vals) == 0 {
		return ""
	}
	return "(" + strings.Join(k.vals, ", ") + ")"
}

// Encode is the key's lossless text for Redis (cursors, splits): its JSON
// (see MarshalJSON), so a one-column integer key encodes as the bare
// integer "42" that cursors have always held.
func (k Key) Encode() string {
	b, _ := k.MarshalJSON() // never fails: strings always marshal
	return string(b)
}

// DecodeKey reads a key written by Encode, or by an older ebb (a bare
// integer).
func DecodeKey(s string) (Key, error) {
	var k Key
	if err := k.UnmarshalJSON([]byte(s)); err != nil {
		return Key{}, err
	}
	return k, nil
}

// MarshalJSON writes a one-column key whose text is an integer literal as a
// JSON number (42), any other one-column key as a JSON string ("abc"), a
// key of several columns as an array of strings (["7", "abc"]), and the
// zero Key as null. So an
// integer job's tasks, cursors and --json output are byte for byte what
// they were before key shapes, and old and new workers can share a queue;
// the number is written from the text, never through a float, so no digit
// is lost.
func (k Key) MarshalJSON() ([]byte, error) {
	switch {
	case len(k.vals) == 1 && intLiteral.MatchString(k.vals[0]):
		return []byte(k.vals[0]), nil
	case len(k.vals) == 1:
		return json.Marshal(k.vals[0])
	case len(k.vals) == 0:
		return []byte("null"), nil
	}
	return json.Marshal(k.vals)
}

// UnmarshalJSON reads any form MarshalJSON writes; a JSON number (an old
// task's lo and hi, an old cursor) keeps its literal digits.
func (k *Key) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*k = Key{}
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("key %s: %w: %w", b, ErrBadKey, err)
		}
		*k = Key{vals: []string{s}}
	case len(b) > 0 && b[0] == '[':
		var vals []string
		if err := json.Unmarshal(b, &vals); err != nil {
			return fmt.Errorf("key %s: %w: %w", b, ErrBadKey, err)
		}
		*k = Key{vals: vals}
		if len(vals) == 0 {
			*k = Key{}
		}
	case intLiteral.Match(b):
		*k = Key{vals: []string{string(b)}}
	default:
		return fmt.Errorf("%q: %w", b, ErrBadKey)
	}
	return nil
}

// ErrBadKey is text that no key encoding produces.
var ErrBadKey = errors.New("not an encoded key: want an integer, a JSON string or a JSON array of strings")

// intLiteral is an integer written the way PostgreSQL and strconv write
// one: no "+", no leading zeros, so its text and its number are one-to-one.
var intLiteral = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// Inverted reports whether [lo, hi] cannot be a range: a bound is missing,
// the bounds have different widths, or both are integers (or both uuids)
// with lo above hi.
// Keys of shapes that order only in the database (text under a collation)
// are not judged here; a walk of such an inverted range reads nothing.
func Inverted(lo, hi Key) bool {
	if lo.IsZero() || hi.IsZero() || len(lo.vals) != len(hi.vals) {
		return true
	}
	if a, errA := intOf(lo); errA == nil {
		b, errB := intOf(hi)
		return errB == nil && a > b
	}
	a, errA := uuidOf(lo)
	b, errB := uuidOf(hi)
	return errA == nil && errB == nil && a.Cmp(b) > 0
}
