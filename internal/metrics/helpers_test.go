package metrics_test

import (
	dto "github.com/prometheus/client_model/go"

	"github.com/ebbhq/ebb/internal/ebbtest"
)

// value finds the sample of family name whose labels include want.
func value(mfs []*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	for _, mf := range mfs {
		if mf.GetName() == name {
			return ebbtest.Sample(mf, want)
		}
	}
	return 0, false
}
