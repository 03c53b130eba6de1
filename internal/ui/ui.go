// Package ui serves ebb's on-call page: one HTML page listing every job with
// its progress, pace, ETA, guard signals and pause reason, with Pause and
// Resume per job and for the whole fleet; the JSON API the page polls; and
// Asynqmon mounted under /monitoring/ against the same Redis.
//
// ui reads and steers jobs only through control (the calls enqueuer status,
// pause and resume make), so the page and the CLI can never disagree. It
// owns authentication of state-changing requests (an optional shared token)
// and cross-site request protection. It leaves listening, TLS and the
// lifetime of the Redis client to the caller (cmd/enqueuer's ui command).
package ui

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/ledger"
)

// MonitoringPath is where Asynqmon is mounted; its API is under
// MonitoringPath + "api/".
const MonitoringPath = "/monitoring/"

// Config configures the on-call handler.
type Config struct {
	// Monitor is how Asynqmon connects to Redis (see ConnOpt). Asynqmon
	// opens its own connections from it, which Server.Close closes. Nil
	// leaves /monitoring/ out (404).
	Monitor asynq.RedisConnOpt
	// Token, when not empty, must accompany every request that changes
	// state: the page's Pause/Resume (Authorization: Bearer TOKEN) and
	// Asynqmon's buttons (HTTP Basic with TOKEN as the password, which
	// the browser asks for). Reads stay open. Empty means no token.
	Token string
	// AllowedHosts are the host names, besides localhost and IP
	// addresses, that requests may name in their Host header: the name
	// the page is reached by behind a proxy or a Kubernetes service. Any
	// other name is refused, so a page on a site whose name an attacker
	// re-points at this server (DNS rebinding) can neither read nor
	// change anything here.
	AllowedHosts []string
	// Pools opens the pool for a job's database_env, for verify from the
	// page; nil leaves verify to the CLI (501).
	Pools func(ctx context.Context, env string) (*pgxpool.Pool, error)
	// Logger records every pause and resume with the caller's address;
	// nil discards.
	Logger *slog.Logger
	// RequestTimeout bounds the Redis work of one API request; zero
	// means 10s, so a hung Redis fails the poll instead of piling up
	// requests from every open tab.
	RequestTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	return c
}

// Server is the on-call page's http.Handler.
type Server struct {
	ctl     *control.Control
	cfg     Config
	log     *slog.Logger
	handler http.Handler
	monitor *asynqmon.HTTPHandler
	// mu guards verifying, the jobs a verify started from the page runs
	// for; wg waits for those verifies, bg is their context, ended by Close.
	mu        sync.Mutex
	verifying map[string]bool
	wg        sync.WaitGroup
	bg        context.Context
	stopBg    context.CancelFunc
	// tokenSum is the SHA-256 of Config.Token, nil without a token.
	// Comparing digests keeps the comparison constant-time even in the
	// token's length.
	tokenSum []byte
}

// New returns the on-call handler for ctl. The caller owns ctl and closes
// it; Close releases only what New opened (Asynqmon's Redis connections).
func New(ctl *control.Control, cfg Config) (*Server, error) {
	if ctl == nil {
		return nil, errors.New("ui: a control is required")
	}
	cfg = cfg.withDefaults()
	s := &Server{ctl: ctl, cfg: cfg, log: cfg.Logger, verifying: map[string]bool{}}
	s.bg, s.stopBg = context.WithCancel(context.Background())
	if cfg.Token != "" {
		sum := sha256.Sum256([]byte(cfg.Token))
		s.tokenSum = sum[:]
	}
	mux := http.NewServeMux()
	page, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	mux.Handle("GET /{$}", pageHeaders(http.FileServerFS(page)))
	mux.Handle("GET /static/", pageHeaders(http.StripPrefix("/static/", http.FileServerFS(page))))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /api/info", s.info)
	mux.HandleFunc("GET /api/jobs", s.jobs)
	mux.HandleFunc("GET /api/jobs/{job}", s.job)
	mux.HandleFunc("GET /api/jobs/{job}/history", s.history)
	mux.HandleFunc("GET /api/jobs/{job}/series", s.series)
	mux.Handle("POST /api/jobs/{job}/pause", s.mutating(s.setJobPause(true)))
	mux.Handle("POST /api/jobs/{job}/resume", s.mutating(s.setJobPause(false)))
	mux.Handle("POST /api/jobs/{job}/override-guard", s.mutating(s.overrideGuard(true)))
	mux.Handle("POST /api/jobs/{job}/end-override", s.mutating(s.overrideGuard(false)))
	mux.Handle("POST /api/jobs/{job}/set", s.mutating(http.HandlerFunc(s.setLimits)))
	mux.Handle("POST /api/jobs/{job}/verify", s.mutating(http.HandlerFunc(s.verify)))
	mux.Handle("POST /api/jobs/{job}/cleanup", s.mutating(http.HandlerFunc(s.cleanup)))
	mux.Handle("POST /api/pause", s.mutating(s.setGlobalPause(true)))
	mux.Handle("POST /api/resume", s.mutating(s.setGlobalPause(false)))
	if cfg.Monitor != nil {
		s.monitor = asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: cfg.Monitor})
		mux.Handle(MonitoringPath, s.guardMonitor(s.monitor))
	}
	// Browsers send Sec-Fetch-Site (or Origin) on every POST: a form on
	// another site that targets this page is refused before any handler
	// runs, even when the browser holds Basic credentials for it.
	s.handler = s.hostCheck(http.NewCrossOriginProtection().Handler(mux))
	return s, nil
}

// ServeHTTP serves the page, the API, /healthz and /monitoring/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// Close closes Asynqmon's Redis connections. The Control and its Redis
// client stay open: they belong to the caller.
func (s *Server) Close() error {
	// Verifies started from the page stop with the server.
	s.stopBg()
	s.wg.Wait()
	if s.monitor == nil {
		return nil
	}
	return s.monitor.Close()
}

// ConnOpt turns the options of the Redis client ebb already dialled into
// Asynqmon's connection options, so the address, credentials, database and
// TLS settings come from one parsed REDIS_URL and no second parser (whose
// errors might quote the URL with its password) is involved.
func ConnOpt(o *redis.Options) asynq.RedisClientOpt {
	return asynq.RedisClientOpt{
		Network: o.Network, Addr: o.Addr, Username: o.Username, Password: o.Password, DB: o.DB,
		DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		TLSConfig: o.TLSConfig,
		// Asynqmon serves one operator's clicks; asynq's default pool (ten
		// per CPU) would only hold idle connections on a shared Redis.
		PoolSize: 4,
	}
}

// Info is what the page needs to know about the server itself.
type Info struct {
	// GlobalPauseKey is the key /api/pause sets; a job whose pause
	// reason starts with "<key> is set" is held by it (the rest says who
	// paused and when).
	GlobalPauseKey string `json:"global_pause_key"`
	// TokenRequired says Pause and Resume need a token.
	TokenRequired bool `json:"token_required"`
	// Monitoring is Asynqmon's path, empty when it is not mounted.
	Monitoring string `json:"monitoring,omitempty"`
}

//go:embed static
var static embed.FS

// pageHeaders forbids everything the page does not use: no inline script,
// no third-party origin, no framing (a framed Pause button could be
// clickjacked).
func pageHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy",
			"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		// The page is tiny; a stale copy after an upgrade would talk to an
		// API it does not match.
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

func (s *Server) info(w http.ResponseWriter, _ *http.Request) {
	in := Info{GlobalPauseKey: s.ctl.Ledger().GlobalPauseKey(), TokenRequired: s.tokenSum != nil}
	if s.monitor != nil {
		in.Monitoring = MonitoringPath
	}
	writeJSON(w, http.StatusOK, in)
}

// jobs lists control.Status for every job, sorted by name.
func (s *Server) jobs(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	names, err := s.ctl.Jobs(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sort.Strings(names)
	all := make([]*control.Status, 0, len(names))
	for _, name := range names {
		st, err := s.ctl.Status(ctx, name)
		if errors.Is(err, control.ErrUnknownJob) {
			continue // listed, but its ledger was removed by hand
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		all = append(all, st)
	}
	writeJSON(w, http.StatusOK, all)
}

func (s *Server) job(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	st, err := s.ctl.Status(ctx, r.PathValue("job"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// historyShown is how many guard changes the page asks for by default: a
// few hours of an ordinary job, enough to answer "why was it slow at 03:12?".
const historyShown = 200

// history answers a job's guard changes, newest first: ?n= of them (at most
// ledger.HistoryKept, which is what is kept).
func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	n, ok := countParam(w, r, historyShown, ledger.HistoryKept, "history entries")
	if !ok {
		return
	}
	changes, err := s.ctl.History(ctx, r.PathValue("job"), n)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, changes)
}

// countParam reads the request's ?n= (def when absent), capped at most;
// a value that is not a positive number is answered 400, naming what.
func countParam(w http.ResponseWriter, r *http.Request, def, most int, what string) (int, bool) {
	v := r.URL.Query().Get("n")
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "n must be a positive number of " + what})
		return 0, false
	}
	return min(n, most), true
}

// series answers the job's measured points, oldest first (?n=, at most
// ledger.SeriesKept; default all).
func (s *Server) series(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	n, ok := countParam(w, r, ledger.SeriesKept, ledger.SeriesKept, "points")
	if !ok {
		return
	}
	points, err := s.ctl.Series(ctx, r.PathValue("job"), n)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, points)
}

// setJobPause pauses or resumes one job and answers with its status, so
// the page shows the effect without waiting for its next poll.
func (s *Server) setJobPause(pause bool) http.HandlerFunc {
	return s.jobAction(actionMsg(pause, false), func(ctx context.Context, job, by string) error {
		if pause {
			return s.ctl.Pause(ctx, job, by)
		}
		return s.ctl.Resume(ctx, job, by)
	})
}

// overrideGuard starts (for control.DefaultOverrideFor) or ends an
// operator's override of the job's guard, and answers with its status.
func (s *Server) overrideGuard(start bool) http.HandlerFunc {
	if start {
		return s.jobAction("guard overridden", func(ctx context.Context, job, by string) error {
			_, err := s.ctl.OverrideGuard(ctx, job, by, 0)
			return err
		})
	}
	return s.jobAction("guard override ended", s.ctl.EndGuardOverride)
}

// jobAction runs act on the request's job as the page's caller, logs msg
// with the caller's address, and answers with the job's status. The job
// is looked up first: clearing an absent key is a no-op, and a typo must
// say "unknown job", not "resumed".
func (s *Server) jobAction(msg string, act func(ctx context.Context, job, by string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		job := r.PathValue("job")
		if _, err := s.ctl.Status(ctx, job); err != nil {
			s.fail(w, r, err)
			return
		}
		if err := act(ctx, job, pausedBy(r)); err != nil {
			s.fail(w, r, err)
			return
		}
		s.log.LogAttrs(ctx, slog.LevelInfo, msg, slog.String("job", job),
			slog.String("key", s.ctl.Ledger().PauseKey(job)), slog.String("remote", r.RemoteAddr))
		s.answerStatus(ctx, w, r, job)
	}
}

func (s *Server) setGlobalPause(pause bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		var err error
		if pause {
			err = s.ctl.Pause(ctx, "", pausedBy(r))
		} else {
			err = s.ctl.Resume(ctx, "", pausedBy(r))
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.log.LogAttrs(ctx, slog.LevelInfo, actionMsg(pause, true),
			slog.String("key", s.ctl.Ledger().GlobalPauseKey()), slog.String("remote", r.RemoteAddr))
		w.WriteHeader(http.StatusNoContent)
	}
}

// pausedBy names the page and the caller's address in the pause flag and
// the audit list, so status shows where an action came from (the page has
// no user names; a token identifies no one).
func pausedBy(r *http.Request) string { return "on-call page (" + r.RemoteAddr + ")" }

// actionMsg keeps log messages constant strings, one per action.
func actionMsg(pause, global bool) string {
	switch {
	case pause && global:
		return "ui paused every job"
	case global:
		return "ui resumed every job"
	case pause:
		return "ui paused job"
	default:
		return "ui resumed job"
	}
}

// fail answers an error as JSON: an unknown job is the caller's 404, any
// other error means Redis did not answer as it should (503, logged).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, control.ErrUnknownJob) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	s.log.LogAttrs(r.Context(), slog.LevelWarn, "ui request failed",
		slog.String("path", r.URL.Path), slog.Any("err", err))
	writeError(w, http.StatusServiceUnavailable, err.Error())
}

// apiError is the body of every API error.
type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
