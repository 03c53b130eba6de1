package ui_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/guard"
)

// browserPath finds a Chromium-family browser. Without one the page test
// skips, unless EBB_REQUIRE_BROWSER=1 (set by .ci/run) makes a missing
// browser a failure, so CI never passes by skipping it.
func browserPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "no chromium, chromium-browser or google-chrome on PATH; install one (apt-get install -y chromium) to run the on-call page in a browser"
	if os.Getenv("EBB_REQUIRE_BROWSER") == "1" {
		t.Fatal(msg + " (EBB_REQUIRE_BROWSER=1)")
	}
	t.Skip(msg)
	return ""
}

// browser starts a headless browser for the test and returns its tab.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browserPath(t)),
		chromedp.Headless,
		// Tests run as root in containers, where Chromium's sandbox
		// cannot start.
		chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first action starts the browser and binds it to this context:
	// no timeout here, each wait below has its own deadline.
	require.NoError(t, chromedp.Do(ctx))
	return ctx
}

// screenshot saves the tab as PNG: into EBB_ARTIFACTS_DIR when set (CI
// keeps it), else the test's temporary directory.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("EBB_ARTIFACTS_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, png, 0o644))
	t.Logf("screenshot: %s", p)
}

// pageText reads the text of the first element sel matches, "" when there
// is none yet.
func pageText(ctx context.Context, sel string) string {
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(
		`(() => { const e = document.querySelector(%q); return e ? e.textContent : ""; })()`, sel)))
	if err != nil {
		return ""
	}
	return v
}

func click(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))))
}

// TestBrowser drives the on-call page in headless Chromium against a job
// that a real worker runs: the page shows it running with its guard
// signals; its Pause button pauses the fleet's work on it and Resume
// resumes it; the global buttons flip the global switch; with a token the
// page asks for it once and the buttons work.
func TestBrowser(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	b := setup(t, "")
	b.seed(40_000)
	// A rule that cannot fire on a shared test server, so the page has a
	// signal to show but other tests' load cannot pause this job.
	b.start("rate: 2000\nguard: {check_every: 1s, rules: [{signal: lock_waits, slow_above: 100000, pause_above: 200000}]}\n")
	// A slow-down the guard recorded, as the leader writes it: the page
	// charts it and lists it with its reason.
	slow, err := json.Marshal(guard.Change{At: time.Now().Add(-time.Minute), From: guard.StateRun, State: guard.StateSlow,
		FromFactor: 1, Factor: 0.5, Reasons: []string{"replication_lag_seconds 3.2 above slow_above 2"}, Leader: "w1"})
	require.NoError(t, err)
	require.NoError(t, b.ledger.RecordHistory(context.Background(), b.job, slow))
	// Measured points, as the leader records them: the page charts rows/s
	// with the paused span shaded and its signals on hover.
	for i, p := range []guard.Point{
		{RowsPerSec: 1800, State: guard.StateRun, Factor: 1, Signals: map[string]float64{"lock_waits": 0}},
		{RowsPerSec: 0, State: guard.StatePause, Factor: 1, Signals: map[string]float64{"lock_waits": 31}},
		{RowsPerSec: 1900, State: guard.StateRun, Factor: 1, Signals: map[string]float64{"lock_waits": 1}},
	} {
		p.At = time.Now().Add(time.Duration(i-3) * 15 * time.Second)
		raw, err := json.Marshal(p)
		require.NoError(t, err)
		require.NoError(t, b.ledger.RecordSeries(context.Background(), b.job, raw))
	}
	b.worker(2)

	card := fmt.Sprintf(`section.job[data-job=%q]`, b.job)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(b.srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS(card))))
	ebbtest.Eventually(t, "the page showing the job running with its guard signal", func() bool {
		return pageText(ctx, card+" .state") == control.StateRunning &&
			pageText(ctx, card+` tr[data-rule="lock_waits"] .pause`) == "200000" &&
			pageText(ctx, card+" .rate-now") != "—"
	})
	require.Equal(t, "run", pageText(ctx, card+" .guard-state"))
	ebbtest.Eventually(t, "the page showing the guard history", func() bool {
		return pageText(ctx, card+" .history-table tr.to-slow .why") == "replication_lag_seconds 3.2 above slow_above 2" &&
			pageText(ctx, card+" .history-table tr.to-slow .rate") == "×0.5" &&
			pageText(ctx, card+" .history-chart rect.span-slow title") != ""
	})
	ebbtest.Eventually(t, "the page charting rows/s with the paused span", func() bool {
		return strings.Contains(pageText(ctx, card+" .series-scale"), "rows/s") &&
			strings.Contains(pageText(ctx, card+" .series-chart rect.span-pause title"), "lock_waits 31") &&
			pageText(ctx, card+` .series-chart path.signal[data-signal="lock_waits"] title`) == "lock_waits: up to 31"
	})
	screenshot(t, ctx, "ui.png")

	// Pause: the job's key is set and the fleet stops writing.
	click(t, ctx, card+` button[data-action="pause"]`)
	key := b.ledger.PauseKey(b.job)
	ebbtest.Eventually(t, key+" set and the job paused", func() bool {
		_, set := b.keySet(key)
		return set && b.status().State == control.StatePaused
	})
	ebbtest.Eventually(t, "the page showing the job paused, and who paused it in its operator actions", func() bool {
		return pageText(ctx, card+" .state") == control.StatePaused &&
			strings.HasPrefix(pageText(ctx, card+" .pause-reason"), "Paused: "+key+" is set (paused by on-call page (") &&
			strings.Contains(pageText(ctx, card+" .audit-table tbody"), "pause") &&
			strings.Contains(pageText(ctx, card+" .audit-table tbody"), "on-call page (")
	})
	screenshot(t, ctx, "ui-paused.png")
	// The key and the state come from the flag alone; the fleet has
	// stopped once the batches in flight landed and no row moves.
	settled := b.settled()
	require.Less(t, settled, int64(40_000), "paused mid-way, so a stop is observable")
	ebbtest.Never(t, 2*time.Second, "rows written while the job is paused", func() bool {
		return b.status().RowsDone != settled
	})

	// Resume: the key is cleared and rows move again.
	before := b.status().RowsDone
	click(t, ctx, card+` button[data-action="resume"]`)
	ebbtest.Eventually(t, "the job writing again", func() bool {
		_, set := b.keySet(key)
		s := b.status()
		return !set && s.State != control.StatePaused && s.RowsDone > before
	})

	// The global switch.
	global := b.ledger.GlobalPauseKey()
	click(t, ctx, "#global-pause")
	ebbtest.Eventually(t, global+" set, shown on the page", func() bool {
		_, set := b.keySet(global)
		return set && strings.HasPrefix(pageText(ctx, "#fleet-state"), "paused ("+global+" is set (paused by on-call page (")
	})
	click(t, ctx, "#global-resume")
	ebbtest.Eventually(t, global+" cleared", func() bool {
		_, set := b.keySet(global)
		return !set
	})

	// With a token the page asks for it once per tab.
	const token = "t0ken-for-the-browser"
	tokenSrv := b.serve(token)
	var prompts atomic.Int32
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return // the test ended
			}
			prompts.Add(1)
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true, PromptText: token})
		}
	}()
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(tokenSrv.URL+"/"), chromedp.WaitVisible(chromedp.CSS(card))))
	click(t, ctx, card+` button[data-action="pause"]`)
	ebbtest.Eventually(t, key+" set through the token server", func() bool {
		_, set := b.keySet(key)
		return set
	})
	click(t, ctx, card+` button[data-action="resume"]`)
	ebbtest.Eventually(t, key+" cleared through the token server", func() bool {
		_, set := b.keySet(key)
		return !set
	})
	require.Equal(t, int32(1), prompts.Load(), "the page asks for the token once")

	// The rest at full speed; the page follows the job to the end.
	zero := 0.0
	_, err = b.ctl.SetOverrides(context.Background(), b.job, "test", control.OverrideFlags{Rate: &zero}, false)
	require.NoError(t, err)
	ebbtest.Eventually(t, "the page showing the job done", func() bool {
		return pageText(ctx, card+" .state") == control.StateDone && pageText(ctx, card+" .pct") == "100.0%"
	})
	require.Equal(t, int64(40_000), b.status().RowsDone)
}

// TestBrowserOverrideGuard: a job its guard holds paused shows the rule as
// the reason and an Override guard button; clicking it records the
// override (who, until when), shows it, and the job runs to done.
func TestBrowserOverrideGuard(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	b := setup(t, "")
	b.seed(5_000)
	b.start("guard:\n  check_every: 1s\n  rules:\n    - {name: always-busy, sql: 'SELECT 100', slow_above: 10, pause_above: 50, clear_below: 1}\n")
	b.worker(1)

	card := fmt.Sprintf(`section.job[data-job=%q]`, b.job)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(b.srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS(card))))
	override := card + ` button[data-action="override-guard"]`
	ebbtest.Eventually(t, "the page showing the guard holding the job, with the override offered", func() bool {
		return pageText(ctx, card+" .state") == control.StatePaused &&
			strings.Contains(pageText(ctx, card+" .pause-reason"), "always-busy") &&
			visible(ctx, override)
	})
	screenshot(t, ctx, "ui-guard-paused.png")

	// The fleet held to a trickle, so the override can be seen working
	// and ended before the job is done.
	_, err := b.ctl.SetOverrides(context.Background(), b.job, "test", control.OverrideFlags{Rate: ptr(200.0)}, false)
	require.NoError(t, err)
	click(t, ctx, override)
	ebbtest.Eventually(t, "the override shown, End override offered, and rows written despite the guard", func() bool {
		return strings.HasPrefix(pageText(ctx, card+" .override"), "Guard overridden by on-call page (") &&
			visible(ctx, card+` button[data-action="end-override"]`) && b.status().RowsDone > 0
	})
	st := b.status()
	require.NotNil(t, st.GuardOverride)
	require.WithinDuration(t, time.Now().Add(control.DefaultOverrideFor), st.GuardOverride.Until, time.Minute)
	require.Equal(t, control.ActionOverrideGuard, st.Audit[0].Action)

	// End override: the guard holds the job again.
	click(t, ctx, card+` button[data-action="end-override"]`)
	ebbtest.Eventually(t, "the guard holding the job again after End override", func() bool {
		s := b.status()
		return s.GuardOverride == nil && s.State == control.StatePaused && s.Audit[0].Action == control.ActionEndOverride &&
			visible(ctx, override)
	})

	// Clear overrides from the page, then override again: the job runs to done.
	click(t, ctx, card+` button[data-knob="clear"]`)
	ebbtest.Eventually(t, "the rate override cleared from the page", func() bool { return len(b.status().Overrides) == 0 })
	click(t, ctx, override)
	ebbtest.Eventually(t, "the job done despite its guard", func() bool { return b.status().State == control.StateDone })
	ebbtest.Eventually(t, "the page showing the job done, with its duration, rate and verify, and no Pause", func() bool {
		summary := pageText(ctx, card+" .done-summary")
		return pageText(ctx, card+" .state") == control.StateDone &&
			strings.HasPrefix(summary, "done in ") && strings.Contains(summary, "rows/s on average") &&
			strings.Contains(summary, "not verified yet: run enqueuer verify "+b.job) &&
			!visible(ctx, card+` button[data-action="pause"]`) && !visible(ctx, card+` button[data-action="resume"]`) &&
			!visible(ctx, override)
	})
	// Verify from the page: its verdict shows with the done job.
	click(t, ctx, card+` button[data-knob="verify"]`)
	ebbtest.Eventually(t, "the page showing the verify's verdict", func() bool {
		return strings.Contains(pageText(ctx, card+" .done-summary"), "verify OK at ")
	})
	screenshot(t, ctx, "ui-done.png")

	// The knobs: a rate set from the page is the job's override, recorded.
	require.NoError(t, chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS(card+` input[name="rate"]`), "750")))
	click(t, ctx, card+` button[data-knob="set"]`)
	ebbtest.Eventually(t, "the rate set from the page", func() bool {
		st := b.status()
		return st.Overrides["rate"] == "750" && st.Audit[0].Action == control.ActionSet
	})

	// Clean up, confirmed: the job goes from Redis and from the page.
	_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`(window.confirm = () => true, true)`))
	require.NoError(t, err)
	click(t, ctx, card+` button[data-knob="cleanup"]`)
	ebbtest.Eventually(t, "the job cleaned up and gone from the page", func() bool {
		_, err := b.ctl.Status(context.Background(), b.job)
		return errors.Is(err, control.ErrUnknownJob) && strings.Contains(pageText(ctx, "#cleanup-note"), "cleaned up") &&
			pageText(ctx, card+" .state") == ""
	})
}

// visible reports whether the element sel matches is shown.
func visible(ctx context.Context, sel string) bool {
	hidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(document.querySelector(%q) || {hidden: true}).hidden`, sel)))
	return err == nil && !hidden
}
