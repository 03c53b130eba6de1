package probe

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/jobspec"
)

// sampler builds a Sampler over rules for db (nil: no database), failing
// the test on a constructor error.
func sampler(t *testing.T, db *ebbtest.DB, cfg SamplerConfig, rules ...jobspec.Rule) *Sampler {
	t.Helper()
	if cfg.Spec == nil {
		cfg.Spec = &jobspec.Spec{Guard: jobspec.Guard{PrometheusEnv: "PROMETHEUS_URL"}}
	}
	cfg.Spec.Guard.Rules = rules
	if db != nil && cfg.Primary == nil {
		cfg.Primary = db.Pool
	}
	s, err := NewSampler(cfg)
	require.NoError(t, err)
	return s
}

// signal is a rule on a built-in signal; the limit does not matter to a
// probe.
func signal(name string) jobspec.Rule {
	return jobspec.Rule{Name: name, Signal: name, PauseAbove: jobspec.Abs(1)}
}

// readOne samples and returns the reading of rule name.
func readOne(t *testing.T, s *Sampler, name string) Reading {
	t.Helper()
	got := s.Sample(context.Background())
	r, ok := got[name]
	require.True(t, ok, "no reading for %s in %v", name, got)
	return r
}

func TestSampleIsolatesSlowAndPanickingProbes(t *testing.T) {
	t.Parallel()
	db := ebbtest.Schema(t)
	rules := []jobspec.Rule{
		{Name: "slow", Signal: jobspec.SignalCommitP95, PauseAbove: jobspec.Abs(1)},
		signal(jobspec.SignalActiveConnections),
	}
	slow := sampler(t, db, SamplerConfig{
		ProbeTimeout: 200 * time.Millisecond,
		CommitP95: func(ctx context.Context) (float64, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		},
	}, rules...)
	got := slow.Sample(context.Background())
	require.Len(t, got, 2)
	require.ErrorIs(t, got["slow"].Err, context.DeadlineExceeded)
	require.Contains(t, got["slow"].Err.Error(), jobspec.SignalCommitP95)
	require.NoError(t, got[jobspec.SignalActiveConnections].Err, "a slow probe must not take the others down")

	panicky := sampler(t, db, SamplerConfig{
		CommitP95: func(context.Context) (float64, error) { panic("boom") },
	}, rules...)
	got = panicky.Sample(context.Background())
	require.ErrorContains(t, got["slow"].Err, "panicked: boom")
	require.NoError(t, got[jobspec.SignalActiveConnections].Err)
}

func TestCommitP95(t *testing.T) {
	t.Parallel()
	rule := signal(jobspec.SignalCommitP95)
	tests := []struct {
		name    string
		p95     func(context.Context) (float64, error)
		want    float64
		wantErr string
	}{
		{name: "value", p95: func(context.Context) (float64, error) { return 0.25, nil }, want: 0.25},
		{name: "nil source", wantErr: "CommitP95 is nil"},
		{name: "source error", p95: func(context.Context) (float64, error) { return 0, errors.New("redis down") }, wantErr: "redis down"},
		{name: "NaN", p95: func(context.Context) (float64, error) { return math.NaN(), nil }, wantErr: "not a number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := readOne(t, sampler(t, nil, SamplerConfig{CommitP95: tc.p95}, rule), rule.Name)
			if tc.wantErr != "" {
				require.ErrorContains(t, r.Err, tc.wantErr)
				require.ErrorContains(t, r.Err, jobspec.SignalCommitP95)
				return
			}
			require.NoError(t, r.Err)
			require.InDelta(t, tc.want, r.Value, 1e-9)
		})
	}
}

func TestNewSamplerRefuses(t *testing.T) {
	t.Parallel()
	db := ebbtest.Schema(t)
	tests := []struct {
		name    string
		cfg     SamplerConfig
		rules   []jobspec.Rule
		wantErr string
	}{
		{name: "no spec", wantErr: "Spec is nil"},
		{
			name:    "prometheus without URL",
			cfg:     SamplerConfig{Primary: db.Pool, Getenv: func(string) string { return "" }},
			rules:   []jobspec.Rule{{Name: "p99", Prometheus: "up", PauseAbove: jobspec.Abs(1)}},
			wantErr: "PROMETHEUS_URL is not set",
		},
		{
			name:    "unknown signal",
			cfg:     SamplerConfig{Primary: db.Pool},
			rules:   []jobspec.Rule{signal("bogus")},
			wantErr: `unknown signal "bogus"`,
		},
		{
			name:    "duplicate names",
			cfg:     SamplerConfig{Primary: db.Pool},
			rules:   []jobspec.Rule{signal(jobspec.SignalLockWaits), signal(jobspec.SignalLockWaits)},
			wantErr: "names must be unique",
		},
		{
			name:    "no database",
			rules:   []jobspec.Rule{signal(jobspec.SignalLockWaits)},
			wantErr: "Primary is nil",
		},
		{
			name:    "sql rule without database",
			rules:   []jobspec.Rule{{Name: "q", SQL: "SELECT 1", PauseAbove: jobspec.Abs(1)}},
			wantErr: "Primary is nil",
		},
		{
			name: "replicas without connector",
			cfg: SamplerConfig{Primary: db.Pool, Spec: &jobspec.Spec{Guard: jobspec.Guard{
				Replicas: []string{"REPLICA_URL"}, PrometheusEnv: "PROMETHEUS_URL",
			}}},
			rules:   []jobspec.Rule{signal(jobspec.SignalReplicationLagSeconds)},
			wantErr: "Replica is nil",
		},
		{
			name:    "autovacuum without table",
			cfg:     SamplerConfig{Primary: db.Pool},
			rules:   []jobspec.Rule{signal(jobspec.SignalAutovacuumOnTable)},
			wantErr: "needs the job's table",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg
			if tc.name != "no spec" && cfg.Spec == nil {
				cfg.Spec = &jobspec.Spec{Guard: jobspec.Guard{PrometheusEnv: "PROMETHEUS_URL"}}
			}
			if cfg.Spec != nil {
				spec := *cfg.Spec
				spec.Guard.Rules = tc.rules
				cfg.Spec = &spec
			}
			_, err := NewSampler(cfg)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestBaselineSQLAveragesSamples(t *testing.T) {
	t.Parallel()
	db := ebbtest.Schema(t)
	// One connection with a temporary sequence: nextval works in a read-only
	// transaction on a temporary sequence, so the rule reads 1, 2, 3 and
	// only an average of all three gives 2.
	cfg, err := pgxpool.ParseConfig(ebbtest.DatabaseURL())
	require.NoError(t, err)
	cfg.MaxConns = 1
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, "CREATE TEMPORARY SEQUENCE ebb_probe_n")
		return err
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	rule := jobspec.Rule{Name: "n", SQL: "SELECT nextval('ebb_probe_n')", PauseAbove: jobspec.Rel(2)}
	s := sampler(t, db, SamplerConfig{Primary: pool}, rule)
	got, err := s.Baseline(context.Background(), rule, time.Now(), 3, time.Millisecond)
	require.NoError(t, err)
	require.InDelta(t, 2.0, got, 1e-9)
}

func TestBaselineRefusesZeroForRelativeRule(t *testing.T) {
	t.Parallel()
	db := ebbtest.Schema(t)
	relative := jobspec.Rule{Name: "zero", SQL: "SELECT 0", SlowAbove: jobspec.Rel(1.2)}
	absolute := jobspec.Rule{Name: "zero_abs", SQL: "SELECT 0", PauseAbove: jobspec.Abs(5)}
	s := sampler(t, db, SamplerConfig{}, relative, absolute)

	_, err := s.Baseline(context.Background(), relative, time.Now(), 2, time.Millisecond)
	require.ErrorContains(t, err, "baseline of rule zero is 0")
	require.ErrorContains(t, err, "absolute limits")

	v, err := s.Baseline(context.Background(), absolute, time.Now(), 1, time.Millisecond)
	require.NoError(t, err, "an absolute rule may have a baseline of 0")
	require.Zero(t, v)

	broken := jobspec.Rule{Name: "broken", SQL: "SELECT 'x'", PauseAbove: jobspec.Rel(2)}
	_, err = s.Baseline(context.Background(), broken, time.Now(), 2, time.Millisecond)
	require.ErrorContains(t, err, "none of 2 readings succeeded")
	require.ErrorContains(t, err, "not a number")
}

func TestBaselineStopsWithContext(t *testing.T) {
	t.Parallel()
	db := ebbtest.Schema(t)
	rule := jobspec.Rule{Name: "one", SQL: "SELECT 1", PauseAbove: jobspec.Rel(2)}
	s := sampler(t, db, SamplerConfig{}, rule)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Baseline(ctx, rule, time.Now(), 3, time.Hour)
	require.ErrorIs(t, err, context.Canceled)
}

func TestCheckPrometheusURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     string
		value   string
		wantErr string
	}{
		{name: "ok", env: "PROM", value: "http://prometheus:9090"},
		{name: "ok with path and credentials", env: "PROM", value: "https://user:secret@prom.example.com/prometheus"},
		{name: "missing", env: "PROM", value: "", wantErr: "environment variable PROM is not set"},
		{name: "no env name", env: "", wantErr: "guard.prometheus_env is empty"},
		{name: "no scheme", env: "PROM", value: "://bad", wantErr: "PROM is not a valid URL (missing protocol scheme)"},
		{name: "not http", env: "PROM", value: "prometheus:9090", wantErr: "must start with http:// or https://"},
		{name: "password in unparsable URL", env: "PROM", value: "http://user:secret@host:port/", wantErr: "PROM is not a valid URL"},
		{name: "password without scheme", env: "PROM", value: "user:secret@host:9090", wantErr: "must start with http://"},
		{name: "no host", env: "PROM", value: "http:///api", wantErr: "PROM has no host"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			getenv := func(k string) string {
				if k == tc.env {
					return tc.value
				}
				return ""
			}
			err := CheckPrometheusURL(getenv, tc.env)
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
			require.NotContains(t, err.Error(), "secret")
		})
	}
}

func TestCounterWindow(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type obs struct {
		at   time.Duration
		n    int64
		want int64
	}
	tests := []struct {
		name string
		obs  []obs
	}{
		{name: "first sample reads 0", obs: []obs{{0, 7, 0}}},
		{name: "flat counter", obs: []obs{{0, 7, 0}, {5 * time.Second, 7, 0}, {10 * time.Second, 7, 0}}},
		{name: "increase inside the window", obs: []obs{{0, 7, 0}, {5 * time.Second, 8, 1}, {50 * time.Second, 9, 2}}},
		{
			name: "increase ages out after a full window",
			obs:  []obs{{0, 0, 0}, {5 * time.Second, 1, 1}, {60 * time.Second, 1, 1}, {65 * time.Second, 1, 0}},
		},
		{
			name: "sparse samples still count the last window",
			obs:  []obs{{0, 0, 0}, {90 * time.Second, 3, 3}, {180 * time.Second, 3, 0}},
		},
		{
			name: "reset counts everything since the reset",
			obs:  []obs{{0, 10, 0}, {5 * time.Second, 12, 2}, {10 * time.Second, 1, 1}, {15 * time.Second, 2, 2}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var w counterWindow
			for i, o := range tc.obs {
				require.Equal(t, o.want, w.observe(t0.Add(o.at), o.n, time.Minute), "observation %d", i)
			}
			require.LessOrEqual(t, len(w.samples), len(tc.obs))
		})
	}
}

func TestWALSegNo(t *testing.T) {
	t.Parallel()
	const mb16 = 16 << 20
	tests := []struct {
		name string
		file string
		size int64
		want int64
		ok   bool
	}{
		{name: "first", file: "000000010000000000000001", size: mb16, want: 1, ok: true},
		{name: "crosses log id", file: "000000010000000100000002", size: mb16, want: 256 + 2, ok: true},
		{name: "other timeline", file: "000000020000000100000002", size: mb16, want: 256 + 2, ok: true},
		{name: "1GB segments", file: "000000010000000300000001", size: 1 << 30, want: 3*4 + 1, ok: true},
		{name: "backup file", file: "000000010000000000000003.00000028.backup", size: mb16, want: 3, ok: true},
		{name: "history file", file: "00000002.history", size: mb16},
		{name: "not hex", file: "00000001000000000000000G", size: mb16},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := walSegNo(tc.file, tc.size)
			require.Equal(t, tc.ok, ok)
			if tc.ok {
				require.Equal(t, tc.want, got)
			}
		})
	}
}
