// Package signing signs what the enqueuer stores in Redis for workers to
// act on (a job's spec, with its SQL, and each range task) with
// HMAC-SHA256 under a key the enqueuer and the workers share
// (EBB_SIGNING_KEY), so that write access to Redis is not the power to
// make every worker run any SQL on the database. A worker with the key
// refuses what does not carry a valid signature.
package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// EnvVar is the environment variable that holds the key.
const EnvVar = "EBB_SIGNING_KEY"

// MinKeyLen is the shortest key accepted: 128 bits' worth of bytes.
const MinKeyLen = 16

// What is signed: a signature made for one kind never verifies another.
const (
	KindSpec = "spec"
	KindTask = "task"
)

// ErrMismatch is a signature that is missing, malformed or not made with
// the key: the signed thing was written by someone without the key.
var ErrMismatch = errors.New("signature mismatch")

// ErrBadKey is a key too short to be one.
var ErrBadKey = errors.New("bad signing key")

// Key is a signing key; a nil Key signs nothing and verifies everything.
type Key []byte

// Parse turns the environment variable's value into a key: "" is no key
// (nil); a value shorter than MinKeyLen bytes is refused.
func Parse(v string) (Key, error) {
	if v == "" {
		return nil, nil
	}
	if len(v) < MinKeyLen {
		return nil, fmt.Errorf("%w: %s is %d bytes; use at least %d random bytes (e.g. openssl rand -hex 32), the same on the enqueuer and every worker", ErrBadKey, EnvVar, len(v), MinKeyLen)
	}
	return Key(v), nil
}

// Enabled reports whether k signs and verifies.
func (k Key) Enabled() bool { return len(k) > 0 }

// Sign returns the hex HMAC-SHA256 of msg as a kind, "" without a key.
func (k Key) Sign(kind string, msg []byte) string {
	if !k.Enabled() {
		return ""
	}
	return hex.EncodeToString(k.mac(kind, msg))
}

// Verify checks sig against msg as a kind, in constant time. Without a
// key everything verifies.
func (k Key) Verify(kind string, msg []byte, sig string) error {
	if !k.Enabled() {
		return nil
	}
	if sig == "" {
		return fmt.Errorf("%w: the %s is not signed (was it written by hand, or by an enqueuer without %s?)", ErrMismatch, kind, EnvVar)
	}
	got, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(got, k.mac(kind, msg)) {
		return fmt.Errorf("%w: the %s in Redis is not the one enqueuer signed (edited in Redis, or signed with another %s)", ErrMismatch, kind, EnvVar)
	}
	return nil
}

func (k Key) mac(kind string, msg []byte) []byte {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write(msg)
	return m.Sum(nil)
}
