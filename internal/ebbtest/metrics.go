package ebbtest

import (
	dto "github.com/prometheus/client_model/go"
)

// Sample finds the value of the first series of mf whose labels include
// want (a counter, gauge or untyped sample); ok is false when none does.
func Sample(mf *dto.MetricFamily, want map[string]string) (v float64, ok bool) {
next:
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}
