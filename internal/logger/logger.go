// Package logger builds the *slog.Logger that ebb's binaries hand to the
// rest of ebb, in the format the operator picks with -log-format: text for
// a terminal, JSON for a log pipeline. It owns only the choice of handler;
// what gets logged, and at which level, stays with the callers.
package logger

import (
	"errors"
	"io"
	"log/slog"
)

// Format is a -log-format value. It implements flag.Value, so a binary
// registers the flag with flag.Var and gets the same help and error text as
// every other ebb binary.
type Format string

// The formats -log-format accepts.
const (
	Text Format = "text"
	JSON Format = "json"
)

// Usage is the help text of the -log-format flag. The back-quoted word is
// what flag.PrintDefaults shows as the value; it prints no default itself
// because the default equals the zero Format's String.
const Usage = "log lines on stderr as `text|json` (default text)"

// String implements flag.Value.
func (f *Format) String() string {
	if f == nil || *f == "" {
		return string(Text)
	}
	return string(*f)
}

// Set implements flag.Value. Its error leaves out the flag's name and value:
// the flag package puts both in front of it.
func (f *Format) Set(s string) error {
	switch p := Format(s); p {
	case Text, JSON:
		*f = p
		return nil
	}
	return errors.New("use text or json")
}

// New returns a logger writing to w in format f at level (nil: info). The
// zero Format is text, so a caller that never parsed a flag still gets a
// readable log.
func New(w io.Writer, f Format, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if f == JSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
