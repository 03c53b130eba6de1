package main

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	// Shuffled so the test proves percentile sorts.
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(hundred), func(i, j int) { hundred[i], hundred[j] = hundred[j], hundred[i] })

	tests := []struct {
		name    string
		samples []time.Duration
		p       float64
		want    time.Duration
		wantOK  bool
	}{
		{name: "empty", samples: nil, p: 95, wantOK: false},
		{name: "p zero is invalid", samples: ms(1, 2), p: 0, wantOK: false},
		{name: "p above 100 is invalid", samples: ms(1, 2), p: 101, wantOK: false},
		{name: "single sample", samples: ms(7), p: 95, want: 7 * time.Millisecond, wantOK: true},
		{name: "p95 of 1..100 is 95", samples: hundred, p: 95, want: 95 * time.Millisecond, wantOK: true},
		{name: "p50 of 1..100 is 50", samples: hundred, p: 50, want: 50 * time.Millisecond, wantOK: true},
		{name: "p99 of 1..100 is 99", samples: hundred, p: 99, want: 99 * time.Millisecond, wantOK: true},
		{name: "p100 is the max", samples: hundred, p: 100, want: 100 * time.Millisecond, wantOK: true},
		{name: "tiny p is the min", samples: hundred, p: 0.001, want: 1 * time.Millisecond, wantOK: true},
		// 20 samples: rank ceil(0.95*20)=19, the 19th smallest.
		{name: "p95 of 20 is the 19th", samples: ms(20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1), p: 95, want: 19 * time.Millisecond, wantOK: true},
		// 10 samples: rank ceil(9.5)=10, so a single outlier is the p95.
		{name: "p95 of 10 sees one outlier", samples: ms(1, 1, 1, 1, 1, 1, 1, 1, 1, 500), p: 95, want: 500 * time.Millisecond, wantOK: true},
		{name: "duplicates", samples: ms(3, 3, 3, 3), p: 95, want: 3 * time.Millisecond, wantOK: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := slices.Clone(tc.samples)
			got, ok := percentile(tc.samples, tc.p)
			if ok != tc.wantOK || got != tc.want {
				t.Fatalf("percentile(p=%v) = %v, %v; want %v, %v", tc.p, got, ok, tc.want, tc.wantOK)
			}
			if !slices.Equal(before, tc.samples) {
				t.Fatalf("percentile modified its input")
			}
		})
	}
}

func TestRecorderPhases(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	rec.record(time.Second, nil) // warm-up: dropped
	rec.setPhase(phaseBaseline)
	for _, d := range ms(1, 2, 3, 4) {
		rec.record(d, nil)
	}
	rec.record(0, errors.New("boom"))
	rec.setPhase(phaseIgnore)
	rec.record(time.Minute, nil) // between windows: dropped
	rec.setPhase(phaseBackfill)
	rec.record(10*time.Millisecond, nil)

	base := rec.summary(phaseBaseline)
	if base.Ops != 4 || base.Errors != 1 {
		t.Fatalf("baseline ops/errors = %d/%d, want 4/1", base.Ops, base.Errors)
	}
	if base.P95 != 4*time.Millisecond || base.P50 != 2*time.Millisecond {
		t.Fatalf("baseline p50/p95 = %v/%v, want 2ms/4ms", base.P50, base.P95)
	}
	during := rec.summary(phaseBackfill)
	if during.Ops != 1 || during.P95 != 10*time.Millisecond {
		t.Fatalf("backfill summary = %+v, want one 10ms op", during)
	}
	if got := rec.count(phaseIgnore); got != 0 {
		t.Fatalf("ignored phase kept %d samples", got)
	}
	if err := rec.lastError(); err == nil || err.Error() != "boom" {
		t.Fatalf("lastError = %v, want boom", err)
	}
}
