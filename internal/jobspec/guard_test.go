package jobspec_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/jobspec"
)

func TestParseGuardFields(t *testing.T) {
	t.Parallel()
	s, err := jobspec.Parse([]byte(valid + `rate: 2000
max_workers: 4
batch: {size: 500, min: 50, max: 5000, target: 300ms}
guard:
  check_every: 2s
  replicas: [REPLICA_URL]
  rules:
    - {signal: lock_waits, pause_above: 5, clear_below: 2, for: 30s}
    - {name: checkout_p95, prometheus: 'histogram_quantile(0.95, x)', slow_above: 1.2x, pause_above: 1.5x, for: 1m}
    - {name: queue_depth, sql: "SELECT count(*) FROM jobs", pause_above: 1000}
    - {signal: active_connections, slow_above: 80%}
schedule:
  timezone: Europe/Berlin
  windows:
    - {days: mon-fri, from: "11:30", to: "14:00", rate: 0.25}
`))
	require.NoError(t, err)
	require.Equal(t, 2000.0, s.Rate)
	require.Equal(t, 4, s.MaxWorkers)
	require.Equal(t, jobspec.BatchSize{Size: 500, Min: 50, Max: 5000, Target: jobspec.Duration(300 * time.Millisecond)}, s.Batch)
	require.True(t, s.Batch.Adaptive())
	require.Equal(t, 2*time.Second, s.Guard.CheckEvery.D())
	require.Equal(t, []string{"REPLICA_URL"}, s.Guard.Replicas)
	require.Len(t, s.Guard.Rules, 4)
	lw := s.Guard.Rules[0]
	require.Equal(t, "lock_waits", lw.Name, "a signal rule is named after its signal")
	require.Equal(t, jobspec.Abs(2), lw.ClearBelow)
	p95 := s.Guard.Rules[1]
	require.Equal(t, "prometheus", p95.Kind())
	require.True(t, p95.NeedsBaseline())
	require.Equal(t, jobspec.Rel(1.2), p95.ClearBelow, "clear_below defaults to the lowest limit")
	require.InDelta(t, 1.8, p95.PauseAbove.Resolve(1.2), 1e-9)
	require.Equal(t, jobspec.Abs(1000), s.Guard.Rules[2].ClearBelow)
	require.InDelta(t, 0.8, s.Guard.Rules[3].SlowAbove.Value, 1e-9)

	// The stored form comes back the same.
	b, err := s.JSON()
	require.NoError(t, err)
	back, err := jobspec.FromJSON(b)
	require.NoError(t, err)
	require.Equal(t, s, back)
}

func TestGuardDefaults(t *testing.T) {
	t.Parallel()
	s, err := jobspec.Parse([]byte(valid + "batch: {size: 200}\n"))
	require.NoError(t, err)
	require.Equal(t, jobspec.BatchSize{Size: 200, Min: 20, Max: 2000, Target: jobspec.Duration(jobspec.DefaultBatchTarget)}, s.Batch)
	require.Equal(t, jobspec.DefaultCheckEvery, s.Guard.CheckEvery.D())
	require.Equal(t, jobspec.DefaultRules(), s.Guard.Rules, "no rules named: the guide's stop numbers")
	require.Zero(t, s.Rate, "unlimited unless set")

	none, err := jobspec.Parse([]byte(valid + "guard: {rules: []}\n"))
	require.NoError(t, err)
	require.Empty(t, none.Guard.Rules, "an explicit empty list turns the default rules off")

	// Stored specs from before batch became an object still load.
	old, err := jobspec.FromJSON([]byte(`{"name":"a","table":"t","key":"id","pending":"p","set":"s","range":{"from":"auto","to":"auto"},"task_span":10,"read_batch":10,"batch":5,"sleep":"0s","timeouts":{"lock":"1s","statement":"1s"},"retries":1,"database_env":"DATABASE_URL","guard":{"check_every":"5s","rules":[],"prometheus_env":"PROMETHEUS_URL"}}`))
	require.NoError(t, err)
	require.Equal(t, jobspec.BatchSize{Size: 5, Min: 5, Max: 5}, old.Batch)
}

func TestParseRejectsGuard(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml, field, hint string
		line                    int
	}{
		{"negative rate", "rate: -1\n", "rate", "must not be negative", 6},
		{"negative max_workers", "max_workers: -2\n", "max_workers", "must not be negative", 6},
		{"batch min above size", "batch: {size: 10, min: 20, max: 30}\n", "batch", "min <= size <= max", 6},
		{"batch unknown field", "batch: {size: 10, maxx: 30}\n", "maxx", "unknown field", 6},
		{"batch max above read_batch", "read_batch: 100\nbatch: {size: 10, max: 200}\n", "batch", "above read_batch", 7},
		{"check_every too short", "guard: {check_every: 10ms}\n", "guard.check_every", "at least 1s", 6},
		{"unknown signal", "guard:\n  rules:\n    - {signal: replication_lag, pause_above: 10}\n", "guard.rules[0]", "unknown signal \"replication_lag\"", 8},
		{"two sources", "guard:\n  rules:\n    - {signal: lock_waits, sql: SELECT 1, pause_above: 1}\n", "guard.rules[0]", "exactly one of", 8},
		{"no limit", "guard:\n  rules:\n    - {signal: lock_waits}\n", "guard.rules[0]", "needs slow_above or pause_above", 8},
		{"pause below clear", "guard:\n  rules:\n    - {signal: lock_waits, pause_above: 2, clear_below: 5}\n", "guard.rules[0]", "pause_above 2 is below clear_below 5", 8},
		{"pause below slow", "guard:\n  rules:\n    - {signal: lock_waits, slow_above: 5, pause_above: 2}\n", "guard.rules[0]", "below slow_above", 8},
		{"mixed relative", "guard:\n  rules:\n    - {signal: lock_waits, slow_above: 1.2x, pause_above: 10}\n", "guard.rules[0]", "mixes absolute", 8},
		{"bad threshold", "guard:\n  rules:\n    - {signal: lock_waits, pause_above: lots}\n", "guard.rules[0].pause_above", "not a threshold", 8},
		{"http with credentials", "guard:\n  rules:\n    - {name: svc, http: 'https://u:pw@svc.internal/health', pause_above: 1}\n", "guard.rules[0]", "carries credentials", 8},
		{"http not a URL", "guard:\n  rules:\n    - {name: svc, http: 'svc.internal/health', pause_above: 1}\n", "guard.rules[0]", "not an http:// or https:// URL", 8},
		{"json_field without http", "guard:\n  rules:\n    - {name: svc, sql: SELECT 1, json_field: a.b, pause_above: 1}\n", "guard.rules[0]", "this rule has no http", 8},
		{"sql without name", "guard:\n  rules:\n    - {sql: SELECT 1, pause_above: 1}\n", "guard.rules[0]", "needs a name", 8},
		{"duplicate names", "guard:\n  rules:\n    - {signal: lock_waits, pause_above: 1}\n    - {signal: lock_waits, pause_above: 2}\n", "guard.rules[1]", "used by another rule", 9},
		{"replica DSN", "guard: {replicas: ['postgres://u:secret@h/db']}\n", "guard.replicas", "not an environment variable name", 6},
		{"bad time zone", "schedule: {timezone: Mars/Olympus, windows: []}\n", "schedule.timezone", "not a time zone", 6},
		{"bad days", "schedule:\n  timezone: UTC\n  windows:\n    - {days: weekdays, from: '01:00', to: '02:00', rate: 1}\n", "schedule.windows[0]", "not a weekday", 9},
		{"bad time", "schedule:\n  timezone: UTC\n  windows:\n    - {days: mon, from: '25:00', to: '02:00', rate: 1}\n", "schedule.windows[0]", "not a time of day", 9},
		{"negative multiplier", "schedule:\n  timezone: UTC\n  windows:\n    - {days: mon, from: '01:00', to: '02:00', rate: -1}\n", "schedule.windows[0]", "0 (pause) or more", 9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := jobspec.Parse([]byte(valid + tc.yaml))
			require.Error(t, err)
			require.ErrorContains(t, err, tc.hint)
			fes := fieldErrors(err)
			require.NotEmpty(t, fes, "%v", err)
			found := false
			for _, fe := range fes {
				if fe.Field == tc.field && fe.Line == tc.line {
					found = true
				}
			}
			require.True(t, found, "want field %q at line %d, got %v", tc.field, tc.line, err)
			require.NotContains(t, err.Error(), "secret", "a DSN is never echoed")
		})
	}
}

func TestScheduleFactor(t *testing.T) {
	t.Parallel()
	s := &jobspec.Schedule{Timezone: "Europe/Berlin", Windows: []jobspec.Window{
		{Days: "mon-fri", From: "11:30", To: "14:00", Rate: 0.25},
		{Days: "mon-sun", From: "00:00", To: "06:00", Rate: 2},
		{Days: "fri", From: "22:00", To: "02:00", Rate: 0},
	}}
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	at := func(day, hh, mm int) time.Time {
		// 2026-11-23 is a Monday.
		return time.Date(2026, 11, 23+day, hh, mm, 0, 0, berlin).UTC()
	}
	tests := []struct {
		name string
		t    time.Time
		want float64
	}{
		{"monday lunch", at(0, 12, 0), 0.25},
		{"lunch starts inclusive", at(0, 11, 30), 0.25},
		{"lunch ends exclusive", at(0, 14, 0), 1},
		{"saturday lunch is outside mon-fri", at(5, 12, 0), 1},
		{"night", at(2, 3, 0), 2},
		{"friday late wraps", at(4, 23, 0), 0},
		{"saturday early belongs to friday's window, first match wins over night", at(5, 1, 0), 2},
		{"afternoon", at(1, 16, 0), 1},
	}
	for _, tc := range tests {
		got, _ := s.Factor(tc.t)
		require.Equal(t, tc.want, got, tc.name)
	}
	var none *jobspec.Schedule
	f, w := none.Factor(time.Now())
	require.Equal(t, 1.0, f)
	require.Empty(t, w)
}
