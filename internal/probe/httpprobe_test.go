package probe

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/jobspec"
)

// TestHTTPRule: an http rule reads the number a service publishes, as
// plain text or out of a JSON field, and fails closed, naming the rule and
// the endpoint (never its query string, which may hold a token), when the
// answer is not a number or not a 2xx.
func TestHTTPRule(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/text":
			fmt.Fprint(w, " 12.5\n")
		case "/json":
			fmt.Fprint(w, `{"health": {"p95_ms": 42, "shards": [{"lag": "7"}]}}`)
		case "/busy":
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		default:
			fmt.Fprint(w, "ok")
		}
	}))
	t.Cleanup(srv.Close)
	rule := func(name, path, field string) jobspec.Rule {
		return jobspec.Rule{Name: name, HTTP: srv.URL + path, JSONField: field, PauseAbove: jobspec.Abs(100)}
	}
	s := sampler(t, nil, SamplerConfig{},
		rule("text", "/text", ""),
		rule("json", "/json", "health.p95_ms"),
		rule("nested", "/json", "health.shards.0.lag"),
		rule("missing", "/json", "health.p99_ms"),
		rule("busy", "/busy?token=s3cret", ""),
		rule("word", "/word", ""),
	)
	for name, want := range map[string]float64{"text": 12.5, "json": 42, "nested": 7} {
		r := readOne(t, s, name)
		require.NoError(t, r.Err, name)
		require.Equal(t, want, r.Value, name)
	}
	for name, msg := range map[string]string{
		"missing": `the answer has no field "p99_ms"`,
		"busy":    "answered 503 Service Unavailable",
		"word":    `the answer "ok" is not a number`,
	} {
		r := readOne(t, s, name)
		require.ErrorContains(t, r.Err, msg, name)
		require.ErrorContains(t, r.Err, "rule "+name+": GET "+srv.URL, name)
		require.NotContains(t, r.Err.Error(), "s3cret", "the query string stays out of errors")
	}
}
