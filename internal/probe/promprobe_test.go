package probe

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/jobspec"
)

// promServer speaks enough of Prometheus's HTTP API for the probe: every
// /api/v1/query gets the same status and body, and the requests' parameters
// are kept for assertions.
type promServer struct {
	srv *httptest.Server

	mu   sync.Mutex
	reqs []url.Values
}

func newPromServer(t *testing.T, status int, body string) *promServer {
	t.Helper()
	p := &promServer{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p.mu.Lock()
		p.reqs = append(p.reqs, r.Form)
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *promServer) requests() []url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]url.Values(nil), p.reqs...)
}

// sampler returns a Sampler whose prometheus rules query this server.
func (p *promServer) sampler(t *testing.T, rules ...jobspec.Rule) *Sampler {
	t.Helper()
	return sampler(t, nil, SamplerConfig{
		HTTPClient: p.srv.Client(),
		Getenv: func(k string) string {
			if k == "PROMETHEUS_URL" {
				return p.srv.URL
			}
			return ""
		},
	}, rules...)
}

func promRule(query string) jobspec.Rule {
	return jobspec.Rule{Name: "checkout_p95", Prometheus: query, SlowAbove: jobspec.Rel(1.2)}
}

const oneSeries = `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"0.25"]}]}}`

func TestPromProbe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		status   int
		body     string
		want     float64
		wantNote string
		wantErr  string
		// onEmpty and onNaN are the rule's on_empty and on_nan.
		onEmpty, onNaN string
	}{
		{name: "one series", status: 200, body: oneSeries, want: 0.25},
		{
			name: "scalar", status: 200, want: 3,
			body: `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"3"]}}`,
		},
		{
			name: "warnings become a note", status: 200, want: 0.25, wantNote: "prometheus warnings: partial data",
			body: `{"status":"success","warnings":["partial data"],"data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"0.25"]}]}}`,
		},
		{
			name: "two series", status: 200, wantErr: "returned 2 series",
			body: `{"status":"success","data":{"resultType":"vector","result":[` +
				`{"metric":{"pod":"a"},"value":[1700000000,"1"]},{"metric":{"pod":"b"},"value":[1700000000,"2"]}]}}`,
		},
		{
			name: "no series", status: 200, wantErr: "returned no series",
			body: `{"status":"success","data":{"resultType":"vector","result":[]}}`,
		},
		{
			name: "range vector", status: 200, wantErr: "returned a matrix",
			body: `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1700000000,"1"]]}]}}`,
		},
		{
			name: "NaN", status: 200, wantErr: "returned NaN",
			body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"NaN"]}]}}`,
		},
		{
			name: "no series, on_empty: zero", status: 200, onEmpty: jobspec.OnZero, want: 0, wantNote: "no series: counted as 0 (on_empty: zero)",
			body: `{"status":"success","data":{"resultType":"vector","result":[]}}`,
		},
		{
			name: "NaN, on_nan: zero", status: 200, onNaN: jobspec.OnZero, want: 0, wantNote: "NaN: counted as 0 (on_nan: zero)",
			body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"NaN"]}]}}`,
		},
		{
			name: "no series, on_empty: blind", status: 200, onEmpty: jobspec.OnBlind, wantErr: "set on_empty: zero if no series means nothing is wrong",
			body: `{"status":"success","data":{"resultType":"vector","result":[]}}`,
		},
		{
			name: "server error", status: 500, wantErr: "prometheus query",
			body: `{"status":"error","errorType":"internal","error":"boom"}`,
		},
		{
			name: "bad query", status: 400, wantErr: "parse error",
			body: `{"status":"error","errorType":"bad_data","error":"parse error at char 3"}`,
		},
		{name: "not JSON", status: 502, body: "<html>bad gateway</html>", wantErr: "prometheus query"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newPromServer(t, tc.status, tc.body)
			rule := promRule(`histogram_quantile(0.95, sum by (le) (rate(checkout_seconds_bucket[5m])))`)
			rule.OnEmpty, rule.OnNaN = tc.onEmpty, tc.onNaN
			r := readOne(t, srv.sampler(t, rule), rule.Name)
			if tc.wantErr != "" {
				require.ErrorContains(t, r.Err, "rule checkout_p95")
				require.ErrorContains(t, r.Err, tc.wantErr)
				return
			}
			require.NoError(t, r.Err)
			require.InDelta(t, tc.want, r.Value, 1e-9)
			require.Equal(t, tc.wantNote, r.Note)

			reqs := srv.requests()
			require.Len(t, reqs, 1)
			require.Equal(t, rule.Prometheus, reqs[0].Get("query"))
			require.Empty(t, reqs[0].Get("time"), "a sample asks for the server's own now")
		})
	}
}

func TestPromBaselineAsksForAverageBeforeStart(t *testing.T) {
	t.Parallel()
	srv := newPromServer(t, 200, oneSeries)
	rule := promRule(`sum(rate(http_requests_total[1m]))`)
	s := srv.sampler(t, rule)
	before := time.Unix(1700000000, 500_000_000)

	got, err := s.Baseline(context.Background(), rule, before, 3, time.Hour)
	require.NoError(t, err)
	require.InDelta(t, 0.25, got, 1e-9)

	reqs := srv.requests()
	require.Len(t, reqs, 1, "one request, not samples spread over every")
	require.Equal(t, `avg_over_time((sum(rate(http_requests_total[1m])))[10m:30s])`, reqs[0].Get("query"))
	require.Equal(t, "1700000000.5", reqs[0].Get("time"))
}

func TestPromBaselineRefusesZero(t *testing.T) {
	t.Parallel()
	srv := newPromServer(t, 200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"0"]}]}}`)
	rule := promRule(`sum(rate(errors_total[1m]))`)
	_, err := srv.sampler(t, rule).Baseline(context.Background(), rule, time.Now(), 3, time.Second)
	require.ErrorContains(t, err, "baseline of rule checkout_p95 is 0")
}

func TestAvgOverTimeKeepsComment(t *testing.T) {
	t.Parallel()
	require.Equal(t, "avg_over_time((up # is it up?\n)[10m:30s])", avgOverTime(" up # is it up? "))
}

func TestPromProbeNeverEchoesPassword(t *testing.T) {
	t.Parallel()
	srv := newPromServer(t, 500, `{"status":"error","errorType":"internal","error":"boom"}`)
	u, err := url.Parse(srv.srv.URL)
	require.NoError(t, err)
	u.User = url.UserPassword("ebb", "s3cret-pw")

	// A reachable server that fails, and one that is not there at all: a
	// transport error quotes the request URL.
	closed := httptest.NewServer(http.NotFoundHandler())
	dead, err := url.Parse(closed.URL)
	require.NoError(t, err)
	closed.Close()
	dead.User = u.User

	for _, target := range []*url.URL{u, dead} {
		rule := promRule("up")
		s := sampler(t, nil, SamplerConfig{
			HTTPClient: srv.srv.Client(),
			Getenv:     func(string) string { return target.String() },
		}, rule)
		r := readOne(t, s, rule.Name)
		require.Error(t, r.Err)
		require.NotContains(t, r.Err.Error(), "s3cret-pw")
		require.False(t, strings.Contains(r.Note, "s3cret-pw"))
	}
}
