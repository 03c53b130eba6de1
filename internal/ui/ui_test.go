package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/leader"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/pause"
	"github.com/ebbhq/ebb/internal/rangetask"
	"github.com/ebbhq/ebb/internal/runner"
	"github.com/ebbhq/ebb/internal/ui"
)

type testBundle struct {
	t      *testing.T
	db     *ebbtest.DB
	redis  *ebbtest.RedisEnv
	ctl    *control.Control
	ledger *ledger.Ledger
	job    string
	srv    *httptest.Server
}

// setup gives the test its own schema, key prefix, queue and job name,
// and serves the on-call handler (with token, when not empty) on a
// loopback port.
func setup(t *testing.T, token string) *testBundle {
	t.Helper()
	db := ebbtest.Schema(t)
	r := ebbtest.Redis(t)
	ctl := control.New(r.Client, r.Prefix, ebbtest.Logger(t))
	t.Cleanup(func() { _ = ctl.Close() })
	b := &testBundle{t: t, db: db, redis: r, ctl: ctl, ledger: ctl.Ledger(), job: "ui-" + ebbtest.Suffix()}
	b.srv = b.serve(token)
	return b
}

// serve starts another on-call server on the bundle's Redis.
func (b *testBundle) serve(token string) *httptest.Server {
	b.t.Helper()
	h, err := ui.New(b.ctl, ui.Config{Monitor: ui.ConnOpt(b.redis.Client.Options()), Token: token, Logger: ebbtest.Logger(b.t),
		Pools: func(context.Context, string) (*pgxpool.Pool, error) { return b.db.Pool, nil }})
	require.NoError(b.t, err)
	srv := httptest.NewServer(h)
	b.t.Cleanup(func() {
		srv.Close()
		require.NoError(b.t, h.Close())
	})
	return srv
}

// seed creates orders with ids 1..n, all pending.
func (b *testBundle) seed(n int) {
	orders := b.db.Table("orders")
	b.db.Exec(b.t, "CREATE TABLE "+orders+" (id bigint PRIMARY KEY, legacy_state int NOT NULL, status text, hits int NOT NULL DEFAULT 0)")
	b.db.Exec(b.t, fmt.Sprintf("INSERT INTO %s (id, legacy_state) SELECT g, g %% 7 FROM generate_series(1, %d) g", orders, n))
	b.db.Exec(b.t, "ANALYZE "+orders)
}

// start stores and enqueues the job; extra is YAML appended to the spec.
func (b *testBundle) start(extra string) {
	b.t.Helper()
	spec, err := jobspec.Parse([]byte(fmt.Sprintf(`name: %s
table: %s
key: id
pending: status IS NULL
set: status = 's' || legacy_state, hits = hits + 1
task_span: 10000
read_batch: 1000
batch: 200
sleep: 0s
%s`, b.job, b.db.Table("orders"), extra)))
	require.NoError(b.t, err)
	_, err = b.ctl.Start(context.Background(), b.db.Pool, spec, b.redis.Queue)
	require.NoError(b.t, err)
}

// worker runs one in-process worker (asynq server, runner and guard
// loop, as the worker binary wires them) until the test ends.
func (b *testBundle) worker(concurrency int) {
	b.t.Helper()
	log := ebbtest.Logger(b.t)
	pools := func(context.Context, string) (*pgxpool.Pool, error) { return b.db.Pool, nil }
	id := "w-" + ebbtest.Suffix()
	var stopping atomic.Bool
	r, err := runner.New(runner.Config{
		Ledger: b.ledger, ID: id, Enqueue: rangetask.Enqueuer(asynq.NewClientFromRedisClient(b.redis.Client), nil),
		Pools: pools, Logger: log, Draining: stopping.Load, PauseRecheck: 200 * time.Millisecond,
	})
	require.NoError(b.t, err)
	g, err := leader.New(leader.Config{Ledger: b.ledger, ID: id, Pools: pools, Logger: log, Tick: 100 * time.Millisecond, Hold: time.Second})
	require.NoError(b.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = g.Run(ctx)
	}()
	srv := asynq.NewServerFromRedisClient(b.redis.Client, runner.ServerConfig(runner.ServerOptions{
		Queue: b.redis.Queue, Concurrency: concurrency, ShutdownTimeout: 10 * time.Second, Logger: log,
	}))
	require.NoError(b.t, srv.Start(r))
	// Like the binary, a stop drains: ranges go back between batches.
	b.t.Cleanup(func() {
		stopping.Store(true)
		srv.Shutdown()
		cancel()
		<-done
	})
}

func (b *testBundle) status() *control.Status {
	b.t.Helper()
	s, err := b.ctl.Status(context.Background(), b.job)
	require.NoError(b.t, err)
	return s
}

// do sends a request to the test server; a POST gets a JSON body unless
// the headers name another Content-Type.
func (b *testBundle) do(srv *httptest.Server, method, path string, hdr map[string]string) (*http.Response, []byte) {
	b.t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("{}")
	}
	req, err := http.NewRequest(method, srv.URL+path, body)
	require.NoError(b.t, err)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	res, err := srv.Client().Do(req)
	require.NoError(b.t, err)
	defer func() { _ = res.Body.Close() }()
	raw, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	return res, raw
}

func (b *testBundle) get(path string) (*http.Response, []byte) {
	return b.do(b.srv, http.MethodGet, path, nil)
}

func (b *testBundle) post(path string, hdr map[string]string) (*http.Response, []byte) {
	return b.do(b.srv, http.MethodPost, path, hdr)
}

// keySet reports whether a Redis key exists and, if so, its value.
func (b *testBundle) keySet(key string) (string, bool) {
	b.t.Helper()
	v, err := b.redis.Client.Get(context.Background(), key).Result()
	if err != nil {
		require.ErrorIs(b.t, err, redis.Nil)
		return "", false
	}
	return v, true
}

func (b *testBundle) queuePaused() bool {
	b.t.Helper()
	info, err := asynq.NewInspectorFromRedisClient(b.redis.Client).GetQueueInfo(b.redis.Queue)
	require.NoError(b.t, err)
	return info.Paused
}

func decode[T any](t *testing.T, raw []byte) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(raw, &v), string(raw))
	return v
}

// TestJobs: /api/jobs lists every started job with its status; one job
// reads on its own; an unknown one is a 404 with a JSON reason.
func TestJobs(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	b.seed(20_000)
	b.start("")

	res, raw := b.get("/api/jobs")
	require.Equal(t, http.StatusOK, res.StatusCode, string(raw))
	require.Equal(t, "application/json", res.Header.Get("Content-Type"))
	jobs := decode[[]control.Status](t, raw)
	require.Len(t, jobs, 1)
	require.Equal(t, b.job, jobs[0].Job)
	require.Equal(t, control.StateQueued, jobs[0].State)
	require.Equal(t, int64(2), jobs[0].RangesTotal)
	require.Equal(t, b.redis.Queue, jobs[0].Queue)

	res, raw = b.get("/api/jobs/" + b.job)
	require.Equal(t, http.StatusOK, res.StatusCode, string(raw))
	require.Equal(t, b.job, decode[control.Status](t, raw).Job)

	res, raw = b.get("/api/jobs/no-such-job")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	require.Contains(t, decode[map[string]string](t, raw)["error"], `unknown job "no-such-job"`)
}

// TestHistory: the page's history endpoint answers the job's guard
// changes newest first, at most ?n= of them, and names a bad n or an
// unknown job.
func TestHistory(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	b.seed(20_000)
	b.start("")
	ctx := context.Background()
	at := time.Date(2026, 12, 3, 3, 12, 0, 0, time.UTC)
	for i, state := range []guard.State{guard.StateSlow, guard.StateRun} {
		entry, err := json.Marshal(guard.Change{At: at.Add(time.Duration(i) * time.Minute), From: guard.StateRun, State: state, Factor: 0.5, Reasons: []string{fmt.Sprintf("change %d", i)}})
		require.NoError(t, err)
		require.NoError(t, b.ledger.RecordHistory(ctx, b.job, entry))
	}

	res, raw := b.get("/api/jobs/" + b.job + "/history")
	require.Equal(t, http.StatusOK, res.StatusCode, string(raw))
	changes := decode[[]guard.Change](t, raw)
	require.Len(t, changes, 2)
	require.Equal(t, []string{"change 1"}, changes[0].Reasons, "newest first")

	_, raw = b.get("/api/jobs/" + b.job + "/history?n=1")
	require.Len(t, decode[[]guard.Change](t, raw), 1)

	res, raw = b.get("/api/jobs/" + b.job + "/history?n=zero")
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	require.Contains(t, decode[map[string]string](t, raw)["error"], "n must be a positive number")

	res, _ = b.get("/api/jobs/no-such-job/history")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
}

// TestJobsEmpty: with no job the list is an empty array, not null, so the
// page can tell "no jobs" from a broken answer.
func TestJobsEmpty(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	res, raw := b.get("/api/jobs")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.JSONEq(t, "[]", string(raw))
}

// TestPauseResume: the buttons' endpoints set and clear the ledger's pause
// keys, and answer with the job's new status.
func TestPauseResume(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	b.seed(20_000)
	b.start("")
	key := b.ledger.PauseKey(b.job)

	res, raw := b.post("/api/jobs/"+b.job+"/pause", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, string(raw))
	st := decode[control.Status](t, raw)
	require.Equal(t, control.StatePaused, st.State)
	// The flag and the reason say who paused: the page and the caller.
	require.True(t, strings.HasPrefix(st.PauseReason, key+" is set (paused by on-call page (127.0.0.1:"), st.PauseReason)
	v, ok := b.keySet(key)
	require.True(t, ok, "%s set", key)
	require.Regexp(t, `^paused by on-call page \(127\.0\.0\.1:\d+\) at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, v)
	on, odd := pause.FlagOn(v)
	require.True(t, on)
	require.False(t, odd, "workers read it without a warning")

	res, raw = b.post("/api/jobs/"+b.job+"/resume", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, string(raw))
	st = decode[control.Status](t, raw)
	require.Equal(t, control.StateQueued, st.State)
	_, ok = b.keySet(key)
	require.False(t, ok, "%s cleared", key)
	// Both actions are kept with the job, newest first, with who did them.
	require.Len(t, st.Audit, 2)
	require.Equal(t, []string{control.ActionResume, control.ActionPause}, []string{st.Audit[0].Action, st.Audit[1].Action})
	for _, a := range st.Audit {
		require.True(t, strings.HasPrefix(a.Who, "on-call page (127.0.0.1:"), a.Who)
		require.WithinDuration(t, time.Now(), a.At, time.Minute)
	}
	_, err := b.ctl.SetOverrides(context.Background(), b.job, "alice@ops via enqueuer", control.OverrideFlags{Rate: ptr(500.0)}, true)
	require.NoError(t, err)
	_, raw = b.get("/api/jobs/" + b.job)
	a := decode[control.Status](t, raw).Audit[0]
	require.Equal(t, control.AuditEntry{At: a.At, Who: "alice@ops via enqueuer", Action: control.ActionSet, Detail: "cleared overrides rate=500"}, a)

	global := b.ledger.GlobalPauseKey()
	res, _ = b.post("/api/pause", nil)
	require.Equal(t, http.StatusNoContent, res.StatusCode)
	_, ok = b.keySet(global)
	require.True(t, ok, "%s set", global)
	_, raw = b.get("/api/jobs")
	require.True(t, strings.HasPrefix(decode[[]control.Status](t, raw)[0].PauseReason, global+" is set (paused by on-call page ("))
	res, _ = b.post("/api/resume", nil)
	require.Equal(t, http.StatusNoContent, res.StatusCode)
	_, ok = b.keySet(global)
	require.False(t, ok, "%s cleared", global)
	require.Equal(t, control.StateQueued, b.status().State)
}

// TestUnknownJob: pausing or resuming a job that was never started is a
// 404 and writes nothing.
func TestUnknownJob(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	for _, action := range []string{"pause", "resume"} {
		res, raw := b.post("/api/jobs/no-such-job/"+action, nil)
		require.Equal(t, http.StatusNotFound, res.StatusCode, action)
		require.Contains(t, decode[map[string]string](t, raw)["error"], `unknown job "no-such-job"`)
	}
	_, ok := b.keySet(b.ledger.PauseKey("no-such-job"))
	require.False(t, ok)
}

// TestToken: with a token, reading stays open, but every POST (the page's
// and Asynqmon's) needs it; a missing or wrong token changes nothing.
func TestToken(t *testing.T) {
	t.Parallel()
	const token = "s3cret-token"
	b := setup(t, token)
	b.seed(20_000)
	b.start("")
	key := b.ledger.PauseKey(b.job)
	bearer := map[string]string{"Authorization": "Bearer " + token}

	res, _ := b.get("/api/jobs")
	require.Equal(t, http.StatusOK, res.StatusCode, "reading needs no token")
	_, raw := b.get("/api/info")
	require.True(t, decode[ui.Info](t, raw).TokenRequired)

	for _, hdr := range []map[string]string{nil, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer " + token + "x"}, {"Authorization": "Basic Og=="}} {
		res, raw := b.post("/api/jobs/"+b.job+"/pause", hdr)
		require.Equal(t, http.StatusUnauthorized, res.StatusCode, "%v: %s", hdr, raw)
		require.Contains(t, res.Header.Get("WWW-Authenticate"), "Bearer")
		require.NotContains(t, string(raw), token)
		_, ok := b.keySet(key)
		require.False(t, ok, "%v: pause key set without the token", hdr)
		res, _ = b.post("/api/pause", hdr)
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	}

	res, raw = b.post("/api/jobs/"+b.job+"/pause", bearer)
	require.Equal(t, http.StatusOK, res.StatusCode, string(raw))
	_, ok := b.keySet(key)
	require.True(t, ok)
	// The token as a Basic password works too (that is how a browser
	// answers Asynqmon's challenge), but unlike a bearer token it does not
	// stand in for the JSON body: browsers attach Basic credentials to
	// cross-site requests by themselves.
	basic := func(contentType string) int {
		req, err := http.NewRequest(http.MethodPost, b.srv.URL+"/api/jobs/"+b.job+"/resume", strings.NewReader("{}"))
		require.NoError(t, err)
		req.SetBasicAuth("oncall", token)
		req.Header.Set("Content-Type", contentType)
		res, err := b.srv.Client().Do(req)
		require.NoError(t, err)
		_ = res.Body.Close()
		return res.StatusCode
	}
	require.Equal(t, http.StatusUnsupportedMediaType, basic("application/x-www-form-urlencoded"))
	_, ok = b.keySet(key)
	require.True(t, ok, "a Basic form post resumed the job")
	require.Equal(t, http.StatusOK, basic("application/json"))
	_, ok = b.keySet(key)
	require.False(t, ok)
	// A bearer token needs no JSON body (curl -X POST -H 'Authorization: …').
	req, err := http.NewRequest(http.MethodPost, b.srv.URL+"/api/jobs/"+b.job+"/pause", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err = b.srv.Client().Do(req)
	require.NoError(t, err)
	_ = res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	res, _ = b.post("/api/jobs/"+b.job+"/resume", bearer)
	require.Equal(t, http.StatusOK, res.StatusCode)
	res, _ = b.post("/api/pause", bearer)
	require.Equal(t, http.StatusNoContent, res.StatusCode)
	res, _ = b.post("/api/resume", bearer)
	require.Equal(t, http.StatusNoContent, res.StatusCode)

	// Asynqmon: reads open, actions behind a Basic challenge.
	qpath := "/monitoring/api/queues/" + b.redis.Queue
	res, _ = b.get(qpath)
	require.Equal(t, http.StatusOK, res.StatusCode)
	res, _ = b.post(qpath+":pause", nil)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.Contains(t, res.Header.Get("WWW-Authenticate"), "Basic")
	require.False(t, b.queuePaused(), "Asynqmon paused the queue without the token")
	res, _ = b.do(b.srv, http.MethodDelete, qpath, nil)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, "deleting a queue needs the token")
	res, _ = b.post(qpath+":pause", bearer)
	require.Equal(t, http.StatusNoContent, res.StatusCode)
	require.True(t, b.queuePaused())
	res, _ = b.post(qpath+":resume", bearer)
	require.Equal(t, http.StatusNoContent, res.StatusCode)
	require.False(t, b.queuePaused())
}

// TestCrossSite: without a token, a POST a page on another site could
// make the browser send (a form, or anything the browser marks
// cross-site) is refused and changes nothing.
func TestCrossSite(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	b.seed(20_000)
	b.start("")
	key := b.ledger.PauseKey(b.job)
	tests := []struct {
		name string
		hdr  map[string]string
		code int
	}{
		{"form post", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType},
		{"text/plain post", map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType},
		{"cross-site fetch", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"foreign origin", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
	}
	for _, tc := range tests {
		res, _ := b.post("/api/jobs/"+b.job+"/pause", tc.hdr)
		require.Equal(t, tc.code, res.StatusCode, tc.name)
		_, ok := b.keySet(key)
		require.False(t, ok, "%s: pause key set", tc.name)
	}
	res, _ := b.post("/monitoring/api/queues/"+b.redis.Queue+":pause", map[string]string{"Sec-Fetch-Site": "cross-site"})
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	require.False(t, b.queuePaused())
	// The page's own request (same origin, JSON) passes.
	res, raw := b.post("/api/jobs/"+b.job+"/pause", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": b.srv.URL})
	require.Equal(t, http.StatusOK, res.StatusCode, string(raw))
}

// TestMonitoring: Asynqmon answers under /monitoring/ from the same Redis
// and lists the test's queue.
func TestMonitoring(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	b.seed(20_000)
	b.start("")

	type queues struct {
		Queues []struct {
			Queue  string `json:"queue"`
			Size   int    `json:"size"`
			Paused bool   `json:"paused"`
		} `json:"queues"`
	}
	var found bool
	// Other tests' queues come and go on the shared Redis; Asynqmon fails
	// the whole list when one vanishes between its two reads, so retry.
	ebbtest.Eventually(t, "the test's queue in Asynqmon's list", func() bool {
		res, raw := b.get("/monitoring/api/queues")
		if res.StatusCode != http.StatusOK {
			return false
		}
		for _, q := range decode[queues](t, raw).Queues {
			if q.Queue == b.redis.Queue {
				found = true
				require.Equal(t, 2, q.Size)
				require.False(t, q.Paused)
			}
		}
		return found
	})

	res, raw := b.get("/monitoring/")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, res.Header.Get("Content-Type"), "text/html")
	require.Contains(t, strings.ToLower(string(raw)), "<!doctype html>")
}

// TestPageAndHealth: the page, its assets and /healthz are served, the
// page under a policy that allows no inline script and no framing.
func TestPageAndHealth(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	res, raw := b.get("/")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, res.Header.Get("Content-Type"), "text/html")
	require.Contains(t, string(raw), `id="job-template"`)
	require.Contains(t, res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	for path, typ := range map[string]string{"/static/app.js": "javascript", "/static/app.css": "text/css"} {
		res, _ = b.get(path)
		require.Equal(t, http.StatusOK, res.StatusCode, path)
		require.Contains(t, res.Header.Get("Content-Type"), typ, path)
	}
	res, raw = b.get("/healthz")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "ok\n", string(raw))
	_, raw = b.get("/api/info")
	info := decode[ui.Info](t, raw)
	require.Equal(t, b.ledger.GlobalPauseKey(), info.GlobalPauseKey)
	require.Equal(t, ui.MonitoringPath, info.Monitoring)
	require.False(t, info.TokenRequired)
	res, _ = b.get("/nope")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	res, _ = b.do(b.srv, http.MethodGet, "/api/jobs/"+b.job+"/pause", nil)
	require.Equal(t, http.StatusMethodNotAllowed, res.StatusCode, "a GET never changes anything")
}

// TestNoMonitor: without Redis options there is no /monitoring/.
func TestNoMonitor(t *testing.T) {
	t.Parallel()
	r := ebbtest.Redis(t)
	ctl := control.New(r.Client, r.Prefix, nil)
	t.Cleanup(func() { _ = ctl.Close() })
	h, err := ui.New(ctl, ui.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/monitoring/api/queues", nil)
	req.Host = "localhost"
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusNotFound, rec.Code)

	_, err = ui.New(nil, ui.Config{})
	require.Error(t, err)
}

// TestAsynqmonPausesFleet: Asynqmon's Pause button (its API, through the
// embedded handler) stops a running job after the batches in flight, the
// job shows paused with the queue as the reason, and its Resume lets the
// job finish with every row written once.
func TestAsynqmonPausesFleet(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	b.seed(40_000)
	// No rules: other tests' load on the shared server must not pause it.
	// The rate keeps it running long enough to be paused mid-way.
	b.start("rate: 2000\nguard: {rules: []}\n")
	b.worker(2)
	ebbtest.Eventually(t, "the job running", func() bool {
		s := b.status()
		return s.State == control.StateRunning && s.RowsDone > 0
	})

	qpath := "/monitoring/api/queues/" + b.redis.Queue
	res, raw := b.post(qpath+":pause", nil)
	require.Equal(t, http.StatusNoContent, res.StatusCode, string(raw))
	var s *control.Status
	ebbtest.Eventually(t, "the job paused by the queue", func() bool {
		s = b.status()
		return s.State == control.StatePaused
	})
	require.Contains(t, s.PauseReason, fmt.Sprintf("asynq queue %q is paused", b.redis.Queue))
	_, raw = b.get("/api/jobs/" + b.job)
	require.Equal(t, control.StatePaused, decode[control.Status](t, raw).State, "the page's API agrees")

	settled := b.settled()
	require.Less(t, settled, int64(40_000), "paused before the end")
	ebbtest.Never(t, 2*time.Second, "rows written while the queue is paused", func() bool {
		return b.status().RowsDone != settled
	})

	res, raw = b.post(qpath+":resume", nil)
	require.Equal(t, http.StatusNoContent, res.StatusCode, string(raw))
	ebbtest.Eventually(t, "rows written again", func() bool { return b.status().RowsDone > settled })
	// The rest at full speed: the test proved the pace already.
	zero := 0.0
	_, err := b.ctl.SetOverrides(context.Background(), b.job, "test", control.OverrideFlags{Rate: &zero}, false)
	require.NoError(t, err)
	ebbtest.Eventually(t, "the job done", func() bool { s = b.status(); return s.State == control.StateDone })
	require.Equal(t, int64(40_000), s.RowsDone)
	orders := b.db.Table("orders")
	require.Zero(t, b.db.Count(t, "SELECT count(*) FROM "+orders+" WHERE status IS NULL OR hits <> 1"), "every row written exactly once")
}

// TestDNSRebinding: a request that names another host (a page whose name
// an attacker re-pointed at this server) is refused, reads and writes
// alike, Asynqmon's included; localhost, IP addresses and the names the
// server was told about pass.
func TestDNSRebinding(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	b.seed(1_000)
	b.start("")
	rebound := map[string]string{"Host": "evil.example:8080", "Origin": "http://evil.example:8080", "Sec-Fetch-Site": "same-origin"}
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/api/jobs"},
		{http.MethodPost, "/api/jobs/" + b.job + "/resume"},
		{http.MethodPost, "/api/jobs/" + b.job + "/pause"},
		{http.MethodPost, "/monitoring/api/queues/" + b.redis.Queue + ":pause"},
		{http.MethodDelete, "/monitoring/api/queues/" + b.redis.Queue + "/pending_tasks:delete_all"},
	} {
		res, raw := b.do(b.srv, tc.method, tc.path, rebound)
		require.Equal(t, http.StatusMisdirectedRequest, res.StatusCode, "%s %s: %s", tc.method, tc.path, raw)
		require.Contains(t, string(raw), "-allowed-hosts")
	}
	_, paused := b.keySet(b.ledger.PauseKey(b.job))
	require.False(t, paused)
	require.False(t, b.queuePaused())
	require.Equal(t, int64(1), b.status().RangesTotal)

	for _, host := range []string{"localhost:8080", "127.0.0.1:8080", "[::1]:8080", "10.1.2.3", "ebb.localhost"} {
		res, _ := b.do(b.srv, http.MethodGet, "/api/jobs", map[string]string{"Host": host})
		require.Equal(t, http.StatusOK, res.StatusCode, host)
	}
	h, err := ui.New(b.ctl, ui.Config{AllowedHosts: []string{"ebb.internal"}, Logger: ebbtest.Logger(t)})
	require.NoError(t, err)
	named := httptest.NewServer(h)
	t.Cleanup(named.Close)
	res, _ := b.do(named, http.MethodGet, "/api/jobs", map[string]string{"Host": "EBB.internal:443"})
	require.Equal(t, http.StatusOK, res.StatusCode, "a configured name passes")
	res, _ = b.do(named, http.MethodGet, "/api/jobs", map[string]string{"Host": "evil.example"})
	require.Equal(t, http.StatusMisdirectedRequest, res.StatusCode)
}

// TestRedisInfoNeedsToken: with a token set, Asynqmon's Redis INFO is not
// for anonymous readers; its queue list still is.
func TestRedisInfoNeedsToken(t *testing.T) {
	t.Parallel()
	b := setup(t, "s3cret-token")
	res, _ := b.get("/monitoring/api/redis_info")
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	req, err := http.NewRequest(http.MethodGet, b.srv.URL+"/monitoring/api/redis_info", nil)
	require.NoError(t, err)
	req.SetBasicAuth("oncall", "s3cret-token")
	res2, err := b.srv.Client().Do(req)
	require.NoError(t, err)
	_ = res2.Body.Close()
	require.Equal(t, http.StatusOK, res2.StatusCode)
	res, _ = b.get("/monitoring/api/queues")
	require.Equal(t, http.StatusOK, res.StatusCode)
}

func ptr[T any](v T) *T { return &v }

// TestSetFromPage: the page's knobs change the live limits through the
// same validation as enqueuer set, and leave an audit line.
func TestSetFromPage(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	b.seed(100)
	b.start("")
	path := "/api/jobs/" + b.job + "/set"
	for _, tc := range []struct{ body, want string }{
		{`{"rate": -5}`, "--rate must be 0 (unlimited) or more"},
		{`{"sleep": "soon"}`, `is not a duration like 250ms`},
		{`{"colour": "red"}`, "the body must be JSON like"},
	} {
		res, raw := b.doBody(http.MethodPost, path, tc.body)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, tc.body)
		require.Contains(t, string(raw), tc.want)
	}
	require.Empty(t, b.status().Overrides, "a refused set changes nothing")

	res, raw := b.doBody(http.MethodPost, path, `{"rate": 500, "max_workers": 2, "sleep": "250ms"}`)
	require.Equal(t, http.StatusOK, res.StatusCode, string(raw))
	st := decode[control.Status](t, raw)
	require.Equal(t, map[string]string{"rate": "500", "max_workers": "2", "sleep": "250ms"}, st.Overrides)
	require.Equal(t, control.ActionSet, st.Audit[0].Action)
	require.Equal(t, "max_workers=2 rate=500 sleep=250ms", st.Audit[0].Detail)
	require.True(t, strings.HasPrefix(st.Audit[0].Who, "on-call page (127.0.0.1:"))

	res, raw = b.doBody(http.MethodPost, path, `{"clear": true}`)
	require.Equal(t, http.StatusOK, res.StatusCode, string(raw))
	require.Empty(t, decode[control.Status](t, raw).Overrides)

	// Verify needs the database: a server without it says where to go.
	h, err := ui.New(b.ctl, ui.Config{Logger: ebbtest.Logger(t)})
	require.NoError(t, err)
	bare := httptest.NewServer(h)
	t.Cleanup(func() { bare.Close(); require.NoError(t, h.Close()) })
	res, raw = b.do(bare, http.MethodPost, "/api/jobs/"+b.job+"/verify", nil)
	require.Equal(t, http.StatusNotImplemented, res.StatusCode)
	require.Contains(t, string(raw), "enqueuer verify "+b.job)
}

// TestVerifyAndCleanupFromPage: verify started from the page runs in the
// background and its verdict shows in the job's status; cleanup of the
// finished job removes it.
func TestVerifyAndCleanupFromPage(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	b.seed(2_000)
	b.start("")
	b.worker(1)
	ebbtest.Eventually(t, "job done", func() bool { return b.status().State == control.StateDone })
	srv := b.srv
	res, raw := b.do(srv, http.MethodPost, "/api/jobs/"+b.job+"/verify", nil)
	require.Equal(t, http.StatusAccepted, res.StatusCode, string(raw))
	ebbtest.Eventually(t, "the verdict in the job's status", func() bool {
		v := b.status().Verify
		return v != nil && v.OK
	})
	res, raw = b.do(srv, http.MethodPost, "/api/jobs/"+b.job+"/cleanup", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, string(raw))
	require.Contains(t, string(raw), "cleaned up")
	res, _ = b.do(srv, http.MethodGet, "/api/jobs/"+b.job, nil)
	require.Equal(t, http.StatusNotFound, res.StatusCode)
}

// doBody posts body (JSON) to the test server.
func (b *testBundle) doBody(method, path, body string) (*http.Response, []byte) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, strings.NewReader(body))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/json")
	res, err := b.srv.Client().Do(req)
	require.NoError(b.t, err)
	defer func() { _ = res.Body.Close() }()
	raw, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	return res, raw
}

// settled waits until the batches in flight when a pause came have
// landed, and returns the rows written then. A paused job's ranges are
// held in place (runner's hold.go), so the sign is a row count that stops
// moving, not an empty active list.
func (b *testBundle) settled() int64 {
	b.t.Helper()
	last := int64(-1)
	ebbtest.Eventually(b.t, "the batches in flight landed", func() bool {
		n := b.status().RowsDone
		if n == last {
			return true
		}
		last = n
		time.Sleep(300 * time.Millisecond)
		return false
	})
	return last
}
