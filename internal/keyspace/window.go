package keyspace

import (
	"fmt"
	"regexp"
	"strconv"
)

// Window is the length of the calendar windows a time key is sliced into
// (window: 1h in the job file): n units, the first window starting at the
// key's smallest value truncated to the unit (date_trunc, in the session's
// time zone), each next one a window later. The zero Window slices by count.
type Window struct {
	n    int
	unit string
}

// ParseWindow reads "30s", "15m", "1h", "1d", "1w" or "1mo".
func ParseWindow(s string) (Window, error) {
	m := windowRE.FindStringSubmatch(s)
	if m == nil {
		return Window{}, fmt.Errorf("window %q: write a count and a unit: 30s, 15m, 1h, 1d, 1w or 1mo", s)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n < 1 {
		return Window{}, fmt.Errorf("window %q: the count must be a whole number of at least 1", s)
	}
	return Window{n: n, unit: windowUnits[m[2]]}, nil
}

// IsZero reports whether no window was given.
func (w Window) IsZero() bool { return w.n == 0 }

// String is the window as the job file writes it ("1h"), "" when zero.
func (w Window) String() string {
	if w.IsZero() {
		return ""
	}
	for short, unit := range windowUnits {
		if unit == w.unit {
			return strconv.Itoa(w.n) + short
		}
	}
	return ""
}

// MarshalText writes String; with UnmarshalText it makes a Window a plain
// string in YAML and JSON.
func (w Window) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

// UnmarshalText reads what ParseWindow reads; "" is the zero Window.
func (w *Window) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*w = Window{}
		return nil
	}
	v, err := ParseWindow(string(b))
	if err != nil {
		return err
	}
	*w = v
	return nil
}

// interval is the window as a PostgreSQL interval ("1 hour").
func (w Window) interval() string { return fmt.Sprintf("%d %s", w.n, w.unit) }

var (
	windowRE    = regexp.MustCompile(`^\s*([0-9]+)\s*(s|m|h|d|w|mo)\s*$`)
	windowUnits = map[string]string{"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month"}
)
