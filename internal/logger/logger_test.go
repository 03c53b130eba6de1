package logger_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/logger"
)

// TestFormatFlag: the flag accepts text and json, refuses anything else
// with a message naming the flag, and defaults to text.
func TestFormatFlag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want logger.Format
		err  string
	}{
		{"default", nil, logger.Text, ""},
		{"text", []string{"-log-format", "text"}, logger.Text, ""},
		{"json", []string{"-log-format", "json"}, logger.JSON, ""},
		{"unknown", []string{"-log-format", "yaml"}, "", `invalid value "yaml" for flag -log-format: use text or json`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			f := logger.Text
			fs.Var(&f, "log-format", logger.Usage)
			err := fs.Parse(tc.args)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, f)
		})
	}
}

// TestNew: json writes one JSON object per line, text key=value pairs,
// and the level is honoured.
func TestNew(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := logger.New(&buf, logger.JSON, slog.LevelWarn)
	log.Info("dropped")
	log.Warn("kept", slog.String("job", "j"))
	var m map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &m), buf.String())
	require.Equal(t, "kept", m["msg"])
	require.Equal(t, "j", m["job"])

	buf.Reset()
	logger.New(&buf, logger.Text, nil).Info("hello", slog.String("job", "j"))
	require.True(t, strings.Contains(buf.String(), "msg=hello job=j"), buf.String())
}
