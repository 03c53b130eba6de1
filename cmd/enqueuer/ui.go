package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/dial"
	"github.com/ebbhq/ebb/internal/ui"
)

const uiHelp = `enqueuer ui [-addr 127.0.0.1:8080] [-auth-token TOKEN] [-log-format text|json]

Serves the on-call page: every job with its state, progress, rows/s now and
on average, ETA, the guard's signals against their limits and why a job is
paused, with Pause and Resume per job and for every job. Asynqmon (queues,
tasks, workers) is under /monitoring/, on the same Redis. JSON for scripts:
GET /api/jobs; POST /api/jobs/JOB/pause, /api/jobs/JOB/resume, /api/pause,
/api/resume. /healthz answers "ok".

It listens on loopback unless told otherwise. With a token (-auth-token, or
EBB_UI_TOKEN, which keeps it out of the process list) every request that
changes something needs it: the page asks once per tab; Asynqmon's buttons
take HTTP Basic with the token as password. Reading stays open, except
Redis's INFO in Asynqmon. Requests must name localhost or an IP address in
their Host header, or a name given with -allowed-hosts (or
EBB_UI_ALLOWED_HOSTS): a page that re-points its own name at this server
(DNS rebinding) is refused. Serve it behind TLS if it leaves the machine.

It logs every Pause and Resume (who, which job) at info on stderr; with
-log-format json one JSON object per line, for a log pipeline.

Flags:
`

// uiShutdownTimeout bounds how long a stop waits for requests in flight;
// every API request is a few Redis round trips.
const uiShutdownTimeout = 5 * time.Second

func runUI(ctx context.Context, e *env, args []string) error {
	fs := newFlags("ui", uiHelp, e)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on (HOST:PORT; port 0 picks a free one)")
	token := fs.String("auth-token", "", "token required for Pause, Resume and Asynqmon's actions (default $EBB_UI_TOKEN)")
	hosts := fs.String("allowed-hosts", "", "comma-separated host names the page may be reached by besides localhost and IP addresses, e.g. ebb.internal (default $EBB_UI_ALLOWED_HOSTS)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return bad("ui takes no arguments, got %v", pos)
	}
	if *token == "" {
		*token = e.getenv("EBB_UI_TOKEN")
	}
	if *hosts == "" {
		*hosts = e.getenv("EBB_UI_ALLOWED_HOSTS")
	}
	loopback, err := checkAddr(*addr)
	if err != nil {
		return err
	}
	if !loopback && *token == "" {
		fmt.Fprintf(e.stderr, "enqueuer ui: warning: -addr %s is not a loopback address and no token is set: anyone who reaches it can pause and resume every job; set EBB_UI_TOKEN\n", *addr)
	}

	rdb, err := dial.Redis(ctx, e.getenv("REDIS_URL"), e.getenv(dial.RedisCAEnv))
	if err != nil {
		return err
	}
	defer func() { _ = rdb.Close() }()
	// Operators want to see who paused what, so this command logs at info,
	// unlike the one-shot commands.
	e.level.Set(slog.LevelInfo)
	log := e.log
	ctl := control.New(rdb, e.getenv("EBB_PREFIX"), log)
	ctl.SetGetenv(e.getenv)
	defer func() { _ = ctl.Close() }()
	// Verify from the page opens the job's database like enqueuer verify.
	pools := &dial.Pools{Getenv: e.getenv}
	defer pools.Close()
	h, err := ui.New(ctl, ui.Config{Monitor: ui.ConnOpt(rdb.Options()), Token: *token, AllowedHosts: strings.Split(*hosts, ","),
		Pools: pools.Get, Logger: log})
	if err != nil {
		return err
	}
	defer func() { _ = h.Close() }()

	return serveUI(ctx, e, *addr, h, log)
}

// serveUI serves h on addr until ctx is done, then drains requests in
// flight for up to uiShutdownTimeout.
func serveUI(ctx context.Context, e *env, addr string, h http.Handler, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler: h,
		// A client that never finishes its headers must not hold a
		// connection forever; no write timeout, since Asynqmon's pages
		// may take a while on a big Redis.
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	url := "http://" + ln.Addr().String() + "/"
	fmt.Fprintf(e.stdout, "on-call page: %s  (Asynqmon: %smonitoring/, JSON: %sapi/jobs)\n", url, url, url)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	// The signal context is done; a fresh one bounds the drain.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), uiShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Requests still running after the timeout are cut: a stop is
		// what the operator asked for.
		_ = srv.Close()
	}
	<-served
	return nil
}

// checkAddr refuses an address net.Listen would reject for its form (bad
// input, exit 2) and reports whether it is loopback only. A host name
// other than localhost counts as not loopback: it may resolve anywhere.
func checkAddr(addr string) (loopback bool, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false, bad("-addr %q is not HOST:PORT (e.g. 127.0.0.1:8080): %v", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return false, bad("-addr %q: port %q is not a number from 0 to 65535", addr, port)
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}
