package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    jobStatus
		wantErr string
	}{
		{
			name: "all fields plus unknown ones",
			in:   `{"state":"running","ranges_total":20,"ranges_done":7,"ranges_failed":1,"rows_done":350000,"eta_seconds":12,"guard":{"state":"run"}}`,
			want: jobStatus{State: "running", RangesTotal: 20, RangesDone: 7, RangesFailed: 1, RowsDone: 350000},
		},
		{
			name: "trailing newline and a log line after the object",
			in:   "{\"state\":\"done\",\"rows_done\":5}\nlevel=INFO msg=bye\n",
			want: jobStatus{State: "done", RowsDone: 5},
		},
		{name: "missing state", in: `{"rows_done":1}`, wantErr: "no state"},
		{name: "not json", in: `job not found`, wantErr: "decode status JSON"},
		{name: "empty", in: ``, wantErr: "decode status JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseStatus([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestJobStatusTerminal(t *testing.T) {
	t.Parallel()
	for state, want := range map[string]bool{"queued": false, "running": false, "paused": false, "done": true, "failed": true} {
		if got := (jobStatus{State: state}).terminal(); got != want {
			t.Errorf("terminal(%s) = %v, want %v", state, got, want)
		}
	}
}

func TestProgressLine(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &progress{totalRows: 1000, start: start}

	first := p.line(start.Add(time.Second), jobStatus{State: "running", RangesTotal: 4, RangesDone: 1, RowsDone: 250})
	for _, want := range []string{"running", "ranges 1/4", "rows 250/1000", "25.0%", " 0 rows/s"} {
		if !strings.Contains(first, want) {
			t.Errorf("first line %q lacks %q", first, want)
		}
	}
	// 500 more rows over 2 s: the rate is measured between samples.
	second := p.line(start.Add(3*time.Second), jobStatus{State: "running", RangesTotal: 4, RangesDone: 3, RowsDone: 750})
	for _, want := range []string{"ranges 3/4", "75.0%", " 250 rows/s", "[    3s]"} {
		if !strings.Contains(second, want) {
			t.Errorf("second line %q lacks %q", second, want)
		}
	}
}

func TestPercentDone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		s     jobStatus
		total int64
		want  float64
	}{
		{name: "rows known", s: jobStatus{RowsDone: 50, RangesTotal: 10, RangesDone: 9}, total: 200, want: 25},
		{name: "rows unknown falls back to ranges", s: jobStatus{RangesTotal: 10, RangesDone: 4}, want: 40},
		{name: "redone rows are capped", s: jobStatus{RowsDone: 300}, total: 200, want: 100},
		{name: "nothing known", s: jobStatus{}, want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := percentDone(tc.s, tc.total); got != tc.want {
				t.Fatalf("percentDone = %v, want %v", got, tc.want)
			}
		})
	}
}
