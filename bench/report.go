package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// result is one strategy's figures.
type result struct {
	Name       string    `json:"name"`
	Note       string    `json:"note"`
	Live       bool      `json:"live_traffic"`
	Width      string    `json:"rows_width"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Seconds    float64   `json:"seconds"`
	Rows       int64     `json:"rows_filled"`
	RowsPerSec float64   `json:"rows_per_sec"`
	Complete   bool      `json:"complete"`
	Pending    int64     `json:"pending_left"`
	Wrong      int64     `json:"wrong_rows"`
	// Live latency during the fill, in ms, and as multiples of the
	// baseline's.
	P50      float64 `json:"p50_ms,omitempty"`
	P95      float64 `json:"p95_ms,omitempty"`
	P99      float64 `json:"p99_ms,omitempty"`
	P95x     float64 `json:"p95_x_baseline,omitempty"`
	P99x     float64 `json:"p99_x_baseline,omitempty"`
	Requests int64   `json:"live_requests,omitempty"`
	Late     int64   `json:"live_late,omitempty"`
	Failed   int64   `json:"live_failed,omitempty"`
	// ebb's own costs.
	Batches       int64   `json:"batches,omitempty"`
	RedisPerBatch float64 `json:"redis_cmds_per_batch,omitempty"`
	WorkerRSSMiB  float64 `json:"worker_peak_rss_mib,omitempty"`
	Err           string  `json:"error,omitempty"`
	// History is an ebb job's guard history: rate: auto's steps.
	History json.RawMessage `json:"guard_history,omitempty"`
}

// target is one of issue 12's targets, judged on this run.
type target struct {
	Name   string `json:"name"`
	Met    bool   `json:"met"`
	Detail string `json:"detail"`
}

// report is the run: bench/results/latest.json.
type report struct {
	Machine  string    `json:"machine"`
	Started  time.Time `json:"started"`
	Rows     int64     `json:"rows"`
	LiveRate int       `json:"live_requests_per_sec"`
	Budget   string    `json:"budget_per_strategy"`
	Results  []result  `json:"results"`
	Targets  []target  `json:"targets"`
	Seconds  []second  `json:"live_seconds"`
}

func (rep *report) add(res result, say func(string, ...any)) {
	if base := rep.find("baseline"); base != nil && res.Live && base.P95 > 0 {
		res.P95x, res.P99x = res.P95/base.P95, res.P99/base.P99
	}
	rep.Results = append(rep.Results, res)
	line := fmt.Sprintf("%s: %.1fs", res.Name, res.Seconds)
	if res.Name != "baseline" {
		line += fmt.Sprintf(", %d rows, %.0f rows/s, complete=%v, wrong=%d", res.Rows, res.RowsPerSec, res.Complete, res.Wrong)
	}
	if res.Live {
		line += fmt.Sprintf(", live p50/p95/p99 %.1f/%.1f/%.1f ms", res.P50, res.P95, res.P99)
		if res.P95x > 0 {
			line += fmt.Sprintf(" (p95 x%.2f, p99 x%.2f)", res.P95x, res.P99x)
		}
		line += fmt.Sprintf(", late %d, failed %d", res.Late, res.Failed)
	}
	if res.Batches > 0 {
		line += fmt.Sprintf(", %.1f Redis cmds/batch, worker peak RSS %.0f MiB", res.RedisPerBatch, res.WorkerRSSMiB)
	}
	say("%s", line)
}

func (rep *report) find(name string) *result {
	for i := range rep.Results {
		if rep.Results[i].Name == name {
			return &rep.Results[i]
		}
	}
	return nil
}

// judge checks issue 12's targets against this run. A strategy that did
// not run (filtered out) leaves its target unjudged.
func (rep *report) judge() {
	add := func(name string, met bool, format string, args ...any) {
		rep.Targets = append(rep.Targets, target{Name: name, Met: met, Detail: fmt.Sprintf(format, args...)})
	}
	text, def := rep.find("textbook"), rep.find("ebb-defaults")
	proc := rep.find("keyset-proc-1000")
	if text != nil && def != nil {
		add("1. ebb defaults vs the textbook loop", def.P95x <= text.P95x && def.RowsPerSec >= 2*text.RowsPerSec,
			"p95 x%.2f vs x%.2f (must be no worse), %.0f vs %.0f rows/s = %.2fx (must be >= 2x)",
			def.P95x, text.P95x, def.RowsPerSec, text.RowsPerSec, def.RowsPerSec/text.RowsPerSec)
	}
	if a := rep.find("ebb-auto-1.5x"); a != nil && text != nil {
		add("2a. rate: auto at 1.5x holds p95 <= 1.5x, p99 <= 2x, at >= 3x the textbook's rows/s", a.P95x <= 1.5 && a.P99x <= 2 && a.RowsPerSec >= 3*text.RowsPerSec,
			"p95 x%.2f, p99 x%.2f, %.0f rows/s = %.2fx the textbook's", a.P95x, a.P99x, a.RowsPerSec, a.RowsPerSec/text.RowsPerSec)
	}
	if a := rep.find("ebb-auto-2x"); a != nil && proc != nil {
		add("2b. rate: auto at 2x fills >= 0.8x the keyset procedure's rows/s with no worse p99", a.RowsPerSec >= 0.8*proc.RowsPerSec && a.P99 <= proc.P99,
			"%.0f vs %.0f rows/s = %.2fx; p99 %.1f vs %.1f ms", a.RowsPerSec, proc.RowsPerSec, a.RowsPerSec/proc.RowsPerSec, a.P99, proc.P99)
	}
	if a := rep.find("ebb-auto-3x"); a != nil && proc != nil {
		add("2c. rate: auto at 3x fills at least as fast as the keyset procedure", a.RowsPerSec >= proc.RowsPerSec,
			"%.0f vs %.0f rows/s = %.2fx", a.RowsPerSec, proc.RowsPerSec, a.RowsPerSec/proc.RowsPerSec)
	}
	for _, r := range rep.Results {
		rest, ok := strings.CutPrefix(r.Name, "ebb-unlimited-")
		if !ok {
			continue
		}
		if p := rep.find("parallel-update-" + rest); p != nil && p.RowsPerSec > 0 {
			add("3. limits off, no traffic: "+r.Name+" >= 0.9x "+p.Name, r.RowsPerSec >= 0.9*p.RowsPerSec,
				"%.0f vs %.0f rows/s = %.2fx", r.RowsPerSec, p.RowsPerSec, r.RowsPerSec/p.RowsPerSec)
		}
	}
	if def != nil && def.Batches > 0 {
		add("4a. Redis commands per committed batch <= 10 (ebb defaults, whole fleet: asynq and the guard included)", def.RedisPerBatch <= 10,
			"%.1f", def.RedisPerBatch)
		add("4b. worker peak RSS at defaults <= 100 MiB", def.WorkerRSSMiB <= 100, "%.1f MiB", def.WorkerRSSMiB)
	}
	for _, r := range rep.Results {
		if r.Wrong > 0 || r.Err != "" {
			add("every row right: "+r.Name, false, "%d wrong rows; error: %s", r.Wrong, r.Err)
		}
	}
}

// print writes the table and the targets.
func (rep *report) print(w io.Writer) {
	fmt.Fprintf(w, "\nebb bench: %d rows, %d live requests/s (open loop), on %s\n\n", rep.Rows, rep.LiveRate, rep.Machine)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "strategy\trows/s\tdone\twrong\tp50 ms\tp95 ms\tp99 ms\tp95 x\tp99 x\tlate\tfailed\tredis/batch\t")
	for _, r := range rep.Results {
		live := func(v float64, format string) string {
			if !r.Live {
				return "-"
			}
			return fmt.Sprintf(format, v)
		}
		redis := "-"
		if r.Batches > 0 {
			redis = fmt.Sprintf("%.1f", r.RedisPerBatch)
		}
		done := "yes"
		if !r.Complete {
			done = fmt.Sprintf("%.0f%%", 100*float64(r.Rows)/float64(rep.Rows))
		}
		lateFailed := func(v int64) string {
			if !r.Live {
				return "-"
			}
			return fmt.Sprint(v)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Name, r.RowsPerSec, done, r.Wrong,
			live(r.P50, "%.1f"), live(r.P95, "%.1f"), live(r.P99, "%.1f"), live(r.P95x, "%.2f"), live(r.P99x, "%.2f"),
			lateFailed(r.Late), lateFailed(r.Failed), redis)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	for _, t := range rep.Targets {
		verdict := "MET   "
		if !t.Met {
			verdict = "MISSED"
		}
		fmt.Fprintf(w, "%s %s: %s\n", verdict, t.Name, t.Detail)
	}
}

// write stores latest.json and latest.png in dir.
func (rep *report) write(dir string, say func(string, ...any)) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the report: %w", err)
	}
	jsonPath := filepath.Join(dir, "latest.json")
	if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", jsonPath, err)
	}
	mdPath := filepath.Join(dir, "latest.md")
	if err := os.WriteFile(mdPath, []byte(rep.markdown()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", mdPath, err)
	}
	pngPath := filepath.Join(dir, "latest.png")
	if err := rep.chart(pngPath); err != nil {
		return err
	}
	say("wrote %s, %s and %s", jsonPath, mdPath, pngPath)
	return nil
}

// markdown is the table and the targets as README.md shows them.
func (rep *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d rows, %d live requests/s (open loop), budget %s per strategy, on %s, %s.\n\n",
		rep.Rows, rep.LiveRate, rep.Budget, rep.Machine, rep.Started.UTC().Format("2006-01-02 15:04 UTC"))
	b.WriteString("| strategy | rows/s | filled | wrong | live p50 / p95 / p99 ms | p95, p99 × baseline | late, failed | Redis cmds/batch |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rep.Results {
		live, mult, lf := "-", "-", "-"
		if r.Live {
			live = fmt.Sprintf("%.1f / %.1f / %.1f", r.P50, r.P95, r.P99)
			lf = fmt.Sprintf("%d, %d", r.Late, r.Failed)
			if r.Name != "baseline" {
				mult = fmt.Sprintf("%.2f×, %.2f×", r.P95x, r.P99x)
			}
		}
		rate, filled := "-", "-"
		if r.Name != "baseline" {
			rate = fmt.Sprintf("%.0f", r.RowsPerSec)
			filled = fmt.Sprintf("%.0f%%", 100*float64(r.Rows)/float64(rep.Rows))
		}
		redis := "-"
		if r.Batches > 0 {
			redis = fmt.Sprintf("%.1f", r.RedisPerBatch)
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %d | %s | %s | %s | %s |\n", r.Name, rate, filled, r.Wrong, live, mult, lf, redis)
	}
	b.WriteString("\n")
	for _, t := range rep.Targets {
		verdict := "**met**"
		if !t.Met {
			verdict = "**missed**"
		}
		fmt.Fprintf(&b, "- %s %s: %s\n", verdict, t.Name, t.Detail)
	}
	return b.String()
}
