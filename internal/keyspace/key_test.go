package keyspace_test

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/keyspace"
)

func TestKeyEncoding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		key     keyspace.Key
		encoded string
		text    string
	}{
		{"integer", keyspace.Int(42), `42`, "42"},
		{"negative integer", keyspace.Int(-9223372036854775808), `-9223372036854775808`, "-9223372036854775808"},
		{"text that is no integer literal", keyspace.NewKey("007"), `"007"`, "007"},
		{"text with any bytes", keyspace.NewKey("a\"b\\c\x00é"), `"a\"b\\c\u0000é"`, "a\"b\\c\x00é"},
		{"composite", keyspace.NewKey("7", "2024-01-01 00:00:00.000001+00"), `["7","2024-01-01 00:00:00.000001+00"]`, "(7, 2024-01-01 00:00:00.000001+00)"},
		{"zero", keyspace.Key{}, `null`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.encoded, tc.key.Encode())
			require.Equal(t, tc.text, tc.key.String())
			back, err := keyspace.DecodeKey(tc.encoded)
			require.NoError(t, err)
			require.True(t, back.Equal(tc.key), "%v round-trips to %v", tc.key, back)
		})
	}
}

func TestDecodeKeyLegacy(t *testing.T) {
	t.Parallel()
	// Cursors and tasks written before key shapes hold bare integers.
	k, err := keyspace.DecodeKey("17777")
	require.NoError(t, err)
	require.True(t, k.Equal(keyspace.Int(17777)))
	var p struct {
		Lo keyspace.Key `json:"lo"`
	}
	require.NoError(t, json.Unmarshal([]byte(`{"lo": 9223372036854775807}`), &p))
	require.Equal(t, "9223372036854775807", p.Lo.String(), "no float on the way")
	for _, bad := range []string{"", "1.5", "+3", "01", "abc", "[1]", "{}", "1e3"} {
		_, err := keyspace.DecodeKey(bad)
		require.ErrorIs(t, err, keyspace.ErrBadKey, "%q", bad)
	}
}

func TestKeyInStruct(t *testing.T) {
	t.Parallel()
	type payload struct {
		Lo keyspace.Key   `json:"lo"`
		Ks []keyspace.Key `json:"ks"`
	}
	in := payload{Lo: keyspace.Int(10), Ks: []keyspace.Key{keyspace.Int(1), keyspace.NewKey("x", "y")}}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	require.JSONEq(t, `{"lo":10,"ks":[1,["x","y"]]}`, string(b))
	var out payload
	require.NoError(t, json.Unmarshal(b, &out))
	require.True(t, out.Lo.Equal(in.Lo))
	require.Len(t, out.Ks, 2)
	require.True(t, out.Ks[1].Equal(in.Ks[1]))
}

// FuzzKeyRoundTrip: every key of one or more columns of any text encodes
// and decodes to itself, and a bare integer decodes to its own text.
func FuzzKeyRoundTrip(f *testing.F) {
	f.Add("42", "", false)
	f.Add("-0", "x", true)
	f.Add("a\x00\xff", "(1, 2)", true)
	f.Add("9223372036854775808", "", false)
	f.Add(`["1"]`, `"`, true)
	f.Fuzz(func(t *testing.T, a, b string, two bool) {
		k := keyspace.NewKey(a)
		if two {
			k = keyspace.NewKey(a, b)
		}
		back, err := keyspace.DecodeKey(k.Encode())
		if err != nil {
			t.Fatalf("decode %q of %v: %v", k.Encode(), k.Values(), err)
		}
		if !back.Equal(k) {
			// encoding/json replaces invalid UTF-8; a PostgreSQL text value
			// is always valid UTF-8 in a UTF-8 database.
			if !utf8.ValidString(a) || !utf8.ValidString(b) {
				return
			}
			t.Fatalf("%v round-trips to %v", k.Values(), back.Values())
		}
	})
}
