package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// jobStatus is the part of `enqueuer status JOB --json` the demo reads.
// Unknown fields are ignored so the enqueuer can grow its output freely.
type jobStatus struct {
	State        string `json:"state"` // queued|running|paused|done|failed
	RangesTotal  int64  `json:"ranges_total"`
	RangesDone   int64  `json:"ranges_done"`
	RangesFailed int64  `json:"ranges_failed"`
	RowsDone     int64  `json:"rows_done"`
}

// The states of `enqueuer status` the demo acts on.
const (
	stateRunning = "running"
	stateDone    = "done"
	stateFailed  = "failed"
)

// terminal reports whether the job will change no more.
func (s jobStatus) terminal() bool { return s.State == stateDone || s.State == stateFailed }

// parseStatus decodes the enqueuer's JSON. It takes the first JSON value in
// out, so a trailing newline or log line after it does no harm.
func parseStatus(out []byte) (jobStatus, error) {
	var s jobStatus
	dec := json.NewDecoder(bytes.NewReader(out))
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("decode status JSON %q: %w", truncate(string(out), 200), err)
	}
	if s.State == "" {
		return s, errors.New("status JSON has no state field")
	}
	return s, nil
}

// progress turns successive status samples into the line the demo prints
// every second. The rate is measured between samples, so it shows what the
// fleet does now rather than an average that hides a pause.
type progress struct {
	totalRows int64 // rows the job has to write; 0 when unknown
	start     time.Time
	lastAt    time.Time
	lastRows  int64
}

// line renders sample s taken at now.
func (p *progress) line(now time.Time, s jobStatus) string {
	rate := 0.0
	if !p.lastAt.IsZero() {
		if dt := now.Sub(p.lastAt).Seconds(); dt > 0 {
			rate = float64(s.RowsDone-p.lastRows) / dt
		}
	}
	p.lastAt, p.lastRows = now, s.RowsDone

	pct := percentDone(s, p.totalRows)
	rows := fmt.Sprintf("%d", s.RowsDone)
	if p.totalRows > 0 {
		rows = fmt.Sprintf("%d/%d", s.RowsDone, p.totalRows)
	}
	return fmt.Sprintf("[%6s] %-7s ranges %d/%d (failed %d)  rows %s  %5.1f%%  %8.0f rows/s",
		now.Sub(p.start).Round(time.Second), s.State, s.RangesDone, s.RangesTotal, s.RangesFailed, rows, pct, rate)
}

// percentDone prefers rows (smooth) over ranges (coarse steps); rows done can
// exceed the estimate when ranges redo work after a crash, hence the cap.
func percentDone(s jobStatus, totalRows int64) float64 {
	var pct float64
	switch {
	case totalRows > 0:
		pct = 100 * float64(s.RowsDone) / float64(totalRows)
	case s.RangesTotal > 0:
		pct = 100 * float64(s.RangesDone) / float64(s.RangesTotal)
	}
	return min(pct, 100)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
