package guard_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/probe"
)

// BenchmarkFollowerLimits measures what every batch pays to obey the guard:
// decoding the leader's decision (default rules, their signals and memory)
// and turning it and the overrides into limits.
func BenchmarkFollowerLimits(b *testing.B) {
	spec, err := jobspec.Parse([]byte("name: j\ntable: t\nkey: id\npending: p\nset: s\nrate: 1000\n"))
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	e := guard.NewEvaluator(spec.Guard.Rules, time.Second, 0, nil)
	readings := map[string]probe.Reading{}
	for _, r := range spec.Guard.Rules {
		readings[r.Name] = probe.Reading{Value: 0.5}
	}
	v := e.Step(now, readings, nil)
	raw, err := json.Marshal(guard.Decision{State: v.State, Factor: 1, GuardFactor: 1, Signals: v.Signals,
		Rules: e.States(), At: now, Expires: now.Add(time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	f := guard.NewFollower()
	c := ledger.Controls{Decision: raw}
	b.ReportAllocs()
	for b.Loop() {
		if lim := f.Limits(spec, c, now); lim.Paused {
			b.Fatal("paused")
		}
	}
}

// BenchmarkLeaderStep measures one guard check's decision path on the
// leader: stepping the default rules with fresh readings, then building
// the decision with the schedule and the slow factor.
func BenchmarkLeaderStep(b *testing.B) {
	spec, err := jobspec.Parse([]byte("name: j\ntable: t\nkey: id\npending: p\nset: s\nrate: 1000\n"))
	if err != nil {
		b.Fatal(err)
	}
	e := guard.NewEvaluator(spec.Guard.Rules, time.Second, 0, nil)
	readings := map[string]probe.Reading{}
	for _, r := range spec.Guard.Rules {
		readings[r.Name] = probe.Reading{Value: 0.5}
	}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Second)
		v := e.Step(now, readings, nil)
		d := guard.Decide(guard.Check{Verdict: v, GuardFactor: 1, Schedule: 1, Rules: e.States(), Now: now, CheckEvery: time.Second})
		if d.State == guard.StatePause {
			b.Fatal("paused")
		}
	}
}
