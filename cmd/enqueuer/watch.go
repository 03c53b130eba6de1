package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/ebbhq/ebb/internal/control"
)

// watch follows a job until it is done or failed (or ctx ends): progress
// bars on a terminal, one plain line per poll anywhere else (CI logs,
// pipes), so the same command works in a tmux pane and in a script.
func watch(ctx context.Context, e *env, c *control.Control, job string, every time.Duration) error {
	s, err := c.Status(ctx, job)
	if err != nil {
		return err
	}
	var v watcher = &lineWatcher{w: e.stdout}
	if f, ok := barsFit(e.stdout); ok {
		v = newBarWatcher(ctx, f, s)
	}
	defer v.close()
	var last *control.Status
	var lastAt time.Time
	for {
		now := time.Now()
		var rateNow float64
		if last != nil {
			if dt := now.Sub(lastAt).Seconds(); dt > 0 {
				rateNow = float64(s.RowsDone-last.RowsDone) / dt
			}
		}
		v.show(s, rateNow)
		if s.State == control.StateDone || s.State == control.StateFailed {
			return nil
		}
		last, lastAt = s, now
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
		if s, err = c.Status(ctx, job); err != nil {
			return err
		}
	}
}

// barsFit reports whether out is a terminal that progress bars can be
// drawn on. A pty without a window size (some CI runners, docker exec
// without -t sizing, script(1)) is a terminal of width 0, where the bars
// cannot render: plain lines work there.
func barsFit(out io.Writer) (*os.File, bool) {
	f, ok := out.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, false
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil || width <= 0 {
		return nil, false
	}
	return f, true
}

type watcher interface {
	show(s *control.Status, rateNow float64)
	close()
}

// summary is the part of a watch line after the counters: pace, ETA,
// guard, pause and failures.
func summary(s *control.Status, rateNow float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%.0f rows/s now, %.0f avg", rateNow, s.AvgRowsPerSec)
	if s.ETASeconds >= 0 {
		fmt.Fprintf(&b, ", ETA %s", (time.Duration(s.ETASeconds) * time.Second).Round(time.Second))
	}
	if s.ExpectedRows > 0 {
		fmt.Fprintf(&b, ", %d%% of the expected pace", 100*s.RowsDone/max(s.ExpectedRows, 1))
	}
	if g := s.Guard; g != nil {
		fmt.Fprintf(&b, "; guard %s", g.State)
		if g.Stale {
			b.WriteString(" (stale)")
		}
		if len(g.Reasons) > 0 {
			fmt.Fprintf(&b, ": %s", strings.Join(g.Reasons, "; "))
		}
	}
	if s.PauseReason != "" {
		fmt.Fprintf(&b, "; paused: %s", s.PauseReason)
	}
	if s.Retries > 0 {
		fmt.Fprintf(&b, "; %d batch retries", s.Retries)
	}
	if s.RangesFailed > 0 {
		fmt.Fprintf(&b, "; %d ranges failed", s.RangesFailed)
	}
	if s.DryRun {
		b.WriteString("; dry run")
	}
	return b.String()
}

type lineWatcher struct{ w io.Writer }

func (l *lineWatcher) show(s *control.Status, rateNow float64) {
	fmt.Fprintf(l.w, "%s %s %s: ranges %d/%d, rows %d/%d (%.1f%%), %s\n",
		time.Now().Format(time.TimeOnly), s.Job, s.State, s.RangesDone, s.RangesTotal,
		s.RowsDone, s.EstimatedRows, 100*s.Progress, summary(s, rateNow))
}

func (l *lineWatcher) close() {}

// barWatcher draws two bars (ranges, rows) and a line of pace and guard.
type barWatcher struct {
	p                  *mpb.Progress
	ranges, rows, line *mpb.Bar
	info               atomic.Value // string
	cancel             context.CancelFunc
}

func newBarWatcher(ctx context.Context, out io.Writer, s *control.Status) *barWatcher {
	ctx, cancel := context.WithCancel(ctx)
	w := &barWatcher{cancel: cancel}
	w.p = mpb.NewWithContext(ctx, mpb.WithOutput(out), mpb.WithWidth(50), mpb.WithRefreshRate(200*time.Millisecond))
	w.info.Store("")
	counters := func(name string) mpb.BarOption {
		return mpb.PrependDecorators(decor.Name(name, decor.WC{W: 8}), decor.CountersNoUnit("%d/%d ", decor.WC{W: 24}))
	}
	w.ranges = w.p.AddBar(max(s.RangesTotal, 1), counters("ranges"), mpb.AppendDecorators(decor.Percentage(decor.WC{W: 6})))
	w.rows = w.p.AddBar(max(s.EstimatedRows, 1), counters("rows"), mpb.AppendDecorators(decor.Percentage(decor.WC{W: 6})))
	// The pace and guard line is a bar with no bar: only its text.
	w.line = w.p.New(1, mpb.NopStyle(), mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return w.info.Load().(string) })))
	return w
}

func (w *barWatcher) show(s *control.Status, rateNow float64) {
	w.info.Store(s.State + ", " + summary(s, rateNow))
	w.ranges.SetTotal(max(s.RangesTotal, 1), false)
	w.ranges.SetCurrent(s.RangesDone)
	total := max(s.EstimatedRows, s.RowsDone, 1)
	w.rows.SetTotal(total, false)
	w.rows.SetCurrent(s.RowsDone)
	if s.State == control.StateDone || s.State == control.StateFailed {
		w.ranges.SetTotal(-1, true)
		w.rows.SetTotal(-1, true)
		w.line.SetTotal(-1, true)
	}
}

func (w *barWatcher) close() {
	for _, b := range []*mpb.Bar{w.ranges, w.rows, w.line} {
		if !b.Completed() {
			b.Abort(false)
		}
	}
	w.p.Wait()
	w.cancel()
}
