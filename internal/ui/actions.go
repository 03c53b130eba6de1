package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ebbhq/ebb/internal/control"
)

// The page's knobs and one-shot actions: the live limits enqueuer set
// changes, verify and cleanup. Each goes through control like the CLI's
// command, with the same validation, and leaves an audit line.

// setRequest is the JSON body of POST /api/jobs/{job}/set: the fields to
// change (absent: unchanged), and clear to drop every override first.
type setRequest struct {
	Rate       *float64 `json:"rate,omitempty"`
	MaxWorkers *int     `json:"max_workers,omitempty"`
	BatchMax   *int     `json:"batch_max,omitempty"`
	Sleep      *string  `json:"sleep,omitempty"`
	Clear      bool     `json:"clear,omitempty"`
}

// setLimits changes a job's live limits and answers with its status.
func (s *Server) setLimits(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	job := r.PathValue("job")
	var req setRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("the body must be JSON like {\"rate\": 500, \"max_workers\": 2, \"batch_max\": 200, \"sleep\": \"250ms\", \"clear\": false}: %v", err))
		return
	}
	flags := control.OverrideFlags{Rate: req.Rate, MaxWorkers: req.MaxWorkers, BatchMax: req.BatchMax}
	if req.Sleep != nil {
		d, err := time.ParseDuration(*req.Sleep)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("sleep %q is not a duration like 250ms or 1s", *req.Sleep))
			return
		}
		flags.Sleep = &d
	}
	if _, err := s.ctl.SetOverrides(ctx, job, pausedBy(r), flags, req.Clear); err != nil {
		if errors.Is(err, control.ErrBadOverride) {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.fail(w, r, err)
		return
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "limits set", slog.String("job", job), slog.String("remote", r.RemoteAddr))
	s.answerStatus(ctx, w, r, job)
}

// verify starts a full verify of a job in the background (it reads every
// row and can take minutes) and answers 202; its report is stored with the
// job, where status (and the page) shows its verdict.
func (s *Server) verify(w http.ResponseWriter, r *http.Request) {
	job := r.PathValue("job")
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	if _, err := s.ctl.Status(ctx, job); err != nil {
		s.fail(w, r, err)
		return
	}
	if s.cfg.Pools == nil {
		writeError(w, http.StatusNotImplemented, "this server has no database access: run enqueuer verify "+job)
		return
	}
	s.mu.Lock()
	if s.verifying[job] {
		s.mu.Unlock()
		writeError(w, http.StatusConflict, "a verify of "+job+" is already running")
		return
	}
	s.verifying[job] = true
	s.mu.Unlock()
	s.log.LogAttrs(ctx, slog.LevelInfo, "verify started", slog.String("job", job), slog.String("remote", r.RemoteAddr))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.verifying, job)
			s.mu.Unlock()
		}()
		s.runVerify(s.bg, job)
	}()
	writeJSON(w, http.StatusAccepted, map[string]string{"job": job, "verify": "started: its verdict shows with the job when it finishes"})
}

// runVerify verifies job with a pool for its database and logs the
// verdict; control stores the report with the job.
func (s *Server) runVerify(ctx context.Context, job string) {
	st, err := s.ctl.StoredSpec(ctx, job)
	if err == nil {
		pool, perr := s.cfg.Pools(ctx, st.DatabaseEnv)
		if perr != nil {
			err = perr
		} else {
			var rep *control.VerifyReport
			rep, err = s.ctl.Verify(ctx, pool, job, control.VerifyOptions{})
			if rep != nil {
				s.log.InfoContext(ctx, "verify finished", slog.String("job", job), slog.Bool("ok", rep.OK), slog.Any("problems", rep.Problems))
			}
		}
	}
	if err != nil && !errors.Is(err, control.ErrVerifyFailed) {
		s.log.ErrorContext(ctx, "verify could not run", slog.String("job", job), slog.Any("err", err))
	}
}

// cleanup removes a finished or paused job (enqueuer cleanup, without
// --force) and answers with what it removed.
func (s *Server) cleanup(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	job := r.PathValue("job")
	res, err := s.ctl.Cleanup(ctx, job, false)
	if err != nil {
		if errors.Is(err, control.ErrJobActive) {
			writeError(w, http.StatusConflict, err.Error())
			return
		}
		s.fail(w, r, err)
		return
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "job cleaned up", slog.String("job", job), slog.String("remote", r.RemoteAddr))
	writeJSON(w, http.StatusOK, map[string]string{"job": job, "cleanup": res.Summary()})
}

// answerStatus writes job's status.
func (s *Server) answerStatus(ctx context.Context, w http.ResponseWriter, r *http.Request, job string) {
	st, err := s.ctl.Status(ctx, job)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}
