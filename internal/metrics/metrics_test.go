package metrics_test

import (
	"runtime"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/metrics"
)

// TestBuildInfo: every worker exports ebb_build_info = 1 with its build's
// version, revision and Go version, so a dashboard can tell builds apart.
func TestBuildInfo(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	_, err := metrics.New(reg)
	require.NoError(t, err)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "ebb_build_info" {
			continue
		}
		require.Len(t, mf.GetMetric(), 1)
		m := mf.GetMetric()[0]
		require.Equal(t, 1.0, m.GetGauge().GetValue())
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		require.Equal(t, runtime.Version(), labels["go"])
		require.NotEmpty(t, labels["version"])
		require.NotEmpty(t, labels["revision"])
		return
	}
	t.Fatal("no ebb_build_info")
}
