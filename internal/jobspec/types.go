package jobspec

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ebbhq/ebb/internal/keyspace"
	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as "100ms", "5s" in job files.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML accepts Go duration strings ("250ms", "1m").
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration; write it like 100ms, 5s or 1m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// Bound is one end of the key range: "auto" (min or max of the key at start)
// or a fixed integer.
type Bound struct {
	auto  bool
	value int64
	set   bool
}

// Auto is a bound resolved from the table when the job starts.
func Auto() Bound { return Bound{auto: true, set: true} }

// Fixed is a bound at a given key.
func Fixed(v int64) Bound { return Bound{value: v, set: true} }

// IsAuto reports whether the bound is resolved at start.
func (b Bound) IsAuto() bool { return b.auto }

// Key is the fixed key; meaningless when IsAuto. The job file writes it
// as an integer, the one key shape a fixed range takes today.
func (b Bound) Key() keyspace.Key { return keyspace.Int(b.value) }

func (b Bound) String() string {
	if b.auto {
		return "auto"
	}
	return strconv.FormatInt(b.value, 10)
}

// UnmarshalYAML accepts "auto" or an integer.
func (b *Bound) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseBound(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = v
	return nil
}

// MarshalJSON writes "auto" or the number as a string, so int64 extremes
// survive JSON readers that use float64.
func (b Bound) MarshalJSON() ([]byte, error) { return json.Marshal(b.String()) }

// UnmarshalJSON reads what MarshalJSON wrote.
func (b *Bound) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("range bound: %w", err)
	}
	v, err := parseBound(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

func parseBound(s string) (Bound, error) {
	s = strings.TrimSpace(s)
	if s == "auto" || s == "" {
		return Auto(), nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return Bound{}, fmt.Errorf("%q is not a key; write auto or an integer between %d and %d", s, int64(math.MinInt64), int64(math.MaxInt64))
	}
	return Fixed(v), nil
}
