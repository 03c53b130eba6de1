package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ebbhq/ebb/internal/child"
)

// binaries are the ebb commands the demo runs.
type binaries struct {
	worker, enqueuer string
}

// findBinaries returns dir/worker and dir/enqueuer if both are executable.
func findBinaries(dir string) (binaries, error) {
	var b binaries
	var err error
	if b.worker, err = findBinary(dir, "worker"); err != nil {
		return b, err
	}
	b.enqueuer, err = findBinary(dir, "enqueuer")
	return b, err
}

// findBinary returns dir/name if it is an executable file.
func findBinary(dir, name string) (string, error) {
	path := filepath.Join(dir, name)
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%s binary: %w (build it first with: go build -o %s/ ./cmd/...)", name, err, dir)
	}
	if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", path)
	}
	return path, nil
}

// fleet is the set of worker processes of one run.
type fleet struct {
	workers []*child.Process
	once    sync.Once
}

// startWorkers starts cfg.workers workers on the run's queue and waits until
// each answers /healthz. The returned fleet is never nil, so the caller can
// defer its stop before looking at the error.
func (d *demo) startWorkers(ctx context.Context, r *jobRun) (*fleet, error) {
	f := &fleet{}
	addrs := make([]string, 0, d.cfg.workers)
	for i := 1; i <= d.cfg.workers; i++ {
		addr, err := freeLoopbackAddr()
		if err != nil {
			return f, err
		}
		name := "worker-" + strconv.Itoa(i)
		logPath := filepath.Join(r.logDir, name+".log")
		args := []string{"-queue", r.queue, "-concurrency", strconv.Itoa(d.cfg.concurrency), "-metrics-addr", addr}
		c, err := child.Start(name, r.workerBin, args, r.enq.env, logPath)
		if err != nil {
			return f, err
		}
		f.workers = append(f.workers, c)
		addrs = append(addrs, addr)
		d.printf("%s: pid %d, %s %s, metrics http://%s/metrics, log %s\n",
			name, c.Pid(), filepath.Base(r.workerBin), strings.Join(args, " "), addr, logPath)
	}
	for i, c := range f.workers {
		if err := d.waitHealthy(ctx, c, addrs[i]); err != nil {
			return f, err
		}
	}
	return f, nil
}

// waitHealthy polls a worker's /healthz until it answers 200. A worker that
// exits meanwhile is an error; one that never answers only earns a warning,
// since the queue holds the ranges until it does.
func (d *demo) waitHealthy(ctx context.Context, c *child.Process, addr string) error {
	// No keep-alive: an idle connection to a worker would outlive the
	// worker's readiness and leave a goroutine behind.
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://" + addr + "/healthz"
	deadline := time.Now().Add(d.cfg.readyTimeout)
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		if exited, werr := c.Exited(); exited {
			return fmt.Errorf("%s exited during startup (%v); last lines of %s:\n%s", c.Name(), werr, c.LogPath(), child.Tail(c.LogPath(), 20))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("%s healthz request: %w", c.Name(), err)
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			d.log.LogAttrs(ctx, slog.LevelWarn, "worker not healthy yet, going on", slog.String("worker", c.Name()),
				slog.String("url", url), slog.Duration("waited", d.cfg.readyTimeout))
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("interrupted: %w", context.Cause(ctx))
		case <-ticker.C:
		}
	}
}

// checkAlive reports a worker that exited while the job runs: the demo would
// otherwise wait for ranges nobody processes.
func (f *fleet) checkAlive() error {
	for _, c := range f.workers {
		if exited, werr := c.Exited(); exited {
			return fmt.Errorf("%s exited (%v); last lines of %s:\n%s", c.Name(), werr, c.LogPath(), child.Tail(c.LogPath(), 20))
		}
	}
	return nil
}

// stop stops every worker at once, each with its own grace period, so the
// fleet takes one grace period to stop rather than one per worker. Only the
// first call does anything.
func (f *fleet) stop(grace time.Duration, logger *slog.Logger) {
	f.once.Do(func() {
		var wg sync.WaitGroup
		for _, c := range f.workers {
			wg.Go(func() {
				if err := c.Stop(grace); err != nil {
					logger.LogAttrs(context.Background(), slog.LevelWarn, "worker did not stop cleanly",
						slog.String("worker", c.Name()), slog.Any("err", err))
				}
			})
		}
		wg.Wait()
	})
}

// freeLoopbackAddr asks the kernel for a free port. Another process could
// take it before the worker binds it; a worker that fails to bind exits, and
// the demo reports it.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	return addr, nil
}
