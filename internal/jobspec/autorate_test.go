package jobspec_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/jobspec"
)

// TestAutoRate: rate: auto reads with its objective, adds the rule it
// steers by and the fleet's own commit times and lock waits, and survives
// storage in Redis.
func TestAutoRate(t *testing.T) {
	t.Parallel()
	spec, err := jobspec.Parse([]byte(valid + "rate: auto\nrate_max: 20000\nobjective: {signal: read_latency_ms, max: 1.5x}\n"))
	require.NoError(t, err)
	require.True(t, spec.AutoRate)
	require.Zero(t, spec.Rate)
	require.Equal(t, 20000.0, spec.RateMax)
	require.Equal(t, jobspec.DefaultRateStart, spec.RateStart)
	names := map[string]jobspec.Rule{}
	for _, r := range spec.Guard.Rules {
		names[r.Name] = r
	}
	obj := names[jobspec.ObjectiveRule]
	require.Equal(t, jobspec.SignalReadLatencyMS, obj.Signal)
	require.Equal(t, jobspec.Rel(1.5), obj.SlowAbove, "the objective's rule slows the job above max")
	require.Contains(t, names, jobspec.SignalCommitP95, "the fleet's own commit times are always watched")
	require.Contains(t, names, jobspec.SignalLockWaits)

	b, err := spec.JSON()
	require.NoError(t, err)
	back, err := jobspec.FromJSON(b)
	require.NoError(t, err)
	require.Equal(t, spec, back)

	// A named rule lends its source: the objective reads the same number.
	spec, err = jobspec.Parse([]byte(valid + `rate: auto
objective: {signal: app_p95, max: 0.25}
guard:
  prometheus_env: PROM
  rules:
    - {name: app_p95, prometheus: 'histogram_quantile(0.95, rate(x[1m]))', pause_above: 2}
`))
	require.NoError(t, err)
	require.Len(t, spec.Guard.Rules, 4)
	obj = spec.Guard.Rules[1]
	require.Equal(t, jobspec.ObjectiveRule, obj.Name)
	require.Equal(t, "histogram_quantile(0.95, rate(x[1m]))", obj.Prometheus)
	require.Equal(t, jobspec.Abs(0.25), obj.SlowAbove)

	static, err := jobspec.Parse([]byte(valid + "rate: 250.5\n"))
	require.NoError(t, err)
	require.Equal(t, 250.5, static.Rate)
	require.False(t, static.AutoRate)
}

func TestAutoRateErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, extra, field, msg string
	}{
		{"no objective", "rate: auto\n", "rate", "auto needs an objective"},
		{"objective without auto", "rate: 100\nobjective: {signal: lock_waits, max: 2}\n", "objective", "steers rate: auto"},
		{"rate_max without auto", "rate_max: 100\n", "rate_max", "steers rate: auto"},
		{"unknown signal", "rate: auto\nobjective: {signal: app_p95, max: 2}\n", "objective.signal", `"app_p95" is neither a guard rule's name nor a built-in signal`},
		{"zero max", "rate: auto\nobjective: {signal: lock_waits, max: 0}\n", "objective.max", "must be above 0"},
		{"start above max", "rate: auto\nrate_max: 100\nrate_start: 500\nobjective: {signal: lock_waits, max: 2}\n", "rate_start", "above rate_max"},
		{"not a rate", "rate: fast\n", "rate", "rows per second for the whole fleet (0: unlimited) or auto"},
		{"name clash", "rate: auto\nobjective: {signal: lock_waits, max: 2}\nguard: {rules: [{name: objective, signal: deadlocks, pause_above: 1}]}\n", "guard.rules", `rule "objective" is the one rate: auto makes`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := jobspec.Parse([]byte(valid + tc.extra))
			require.Error(t, err)
			var found bool
			for _, fe := range fieldErrors(err) {
				if fe.Field == tc.field {
					require.Contains(t, fe.Msg, tc.msg)
					found = true
				}
			}
			require.True(t, found, "no error on field %s in: %v", tc.field, err)
		})
	}
}
