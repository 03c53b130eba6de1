// Package throwaway starts PostgreSQL and Redis servers of ebb's own, on
// free loopback ports, from the binaries installed on the machine: for the
// benchmark (a small buffer cache, INFO commandstats nobody else adds to)
// and for fault tests, which must stop, restart and lose servers that no
// other test uses. A Server can be stopped and started again on the same
// port and data directory, as a restart or a failover looks to a client.
package throwaway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one throwaway server process.
type Server struct {
	// URL is the server's postgres:// or redis:// URL.
	URL  string
	Port int

	mu    sync.Mutex
	start func(ctx context.Context) error
	stop  func()
	up    bool
}

// Start starts the server again after Stop, on the same port and data.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.up {
		return nil
	}
	if err := s.start(ctx); err != nil {
		return err
	}
	s.up = true
	return nil
}

// Stop stops the server at once (PostgreSQL's immediate mode, Redis
// killed): what clients see of a crash or a failover.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.up {
		s.stop()
		s.up = false
	}
}

// PostgresOptions tune a throwaway cluster.
type PostgresOptions struct {
	// Settings are extra -c settings, e.g. "shared_buffers=128MB".
	Settings []string
}

// Postgres initdb's a cluster in dir and starts it. initdb refuses to run
// as root, so as root it runs as the postgres user the Debian packages
// create.
func Postgres(ctx context.Context, dir string, o PostgresOptions) (*Server, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "pgdata")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", data, err)
	}
	as, err := runAs(dir)
	if err != nil {
		return nil, err
	}
	if out, err := as(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb in %s: %w: %s", data, err, out)
	}
	opts := []string{"-p " + strconv.Itoa(port), "-c listen_addresses=127.0.0.1", "-c unix_socket_directories=" + dir, "-c max_connections=200"}
	for _, set := range o.Settings {
		opts = append(opts, "-c "+set)
	}
	logFile := filepath.Join(dir, "postgres.log")
	s := &Server{URL: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), Port: port}
	s.start = func(ctx context.Context) error {
		if out, err := as(ctx, filepath.Join(bin, "pg_ctl"), "-D", data, "-l", logFile, "-o", strings.Join(opts, " "), "-w", "-t", "60", "start").CombinedOutput(); err != nil {
			return fmt.Errorf("start postgres on port %d: %w: %s (log: %s)", port, err, out, logFile)
		}
		return nil
	}
	s.stop = func() {
		_ = as(context.Background(), filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop").Run()
	}
	return s, s.Start(ctx)
}

// RedisOptions tune a throwaway redis-server.
type RedisOptions struct {
	// AOF keeps every write in an append-only file in the server's
	// directory (appendfsync always), so a restart keeps the data; without
	// it the server keeps nothing on disk and a restart loses everything.
	AOF bool
}

// Redis starts a redis-server on a free loopback port with its files in dir.
func Redis(ctx context.Context, dir string, o RedisOptions) (*Server, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("no redis-server binary to start a throwaway one")
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--dir", dir}
	if o.AOF {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	s := &Server{URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port), Port: port}
	var cmd *exec.Cmd
	s.start = func(ctx context.Context) error {
		cmd = exec.Command(path, args...)
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start redis-server: %w", err)
		}
		rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
		defer rdb.Close()
		deadline := time.Now().Add(10 * time.Second)
		for rdb.Ping(ctx).Err() != nil {
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				return fmt.Errorf("redis-server on port %d did not answer within 10s", port)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return nil
	}
	s.stop = func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	return s, s.Start(ctx)
}

// FreePort returns a loopback port nobody listens on.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// runAs returns a command builder that runs as the current user, or as
// postgres when the current user is root; dir is handed to postgres.
func runAs(dir string) (func(ctx context.Context, name string, args ...string) *exec.Cmd, error) {
	if os.Geteuid() != 0 {
		return exec.CommandContext, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, initdb needs another user and there is no postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, uid, gid)
	}); err != nil {
		return nil, fmt.Errorf("hand %s to the postgres user: %w", dir, err)
	}
	return func(ctx context.Context, name string, args ...string) *exec.Cmd {
		return exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	}, nil
}

// pgBinDir finds the installed PostgreSQL server binaries.
func pgBinDir() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		if p, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
		return "", errors.New("no initdb found (install PostgreSQL's server package)")
	}
	return filepath.Dir(matches[len(matches)-1]), nil
}
