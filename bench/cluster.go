package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// The servers a run measures against: a throwaway PostgreSQL cluster with
// a small buffer cache (the table must not fit in memory, as a production
// table of 80 million rows does not), or the database BENCH_DATABASE_URL
// names; and a throwaway redis-server, so INFO commandstats counts the
// fleet's commands and nobody else's.

// server is one throwaway server process.
type server struct {
	stop func()
}

// startPostgres initdb's a cluster in dir and starts it on a free loopback
// port with shared_buffers=128MB. initdb refuses to run as root, so as root
// it runs as the postgres user the Debian packages create.
func startPostgres(ctx context.Context, dir string) (dsn string, s server, err error) {
	bin, err := pgBinDir()
	if err != nil {
		return "", s, err
	}
	port, err := freePort()
	if err != nil {
		return "", s, err
	}
	data := filepath.Join(dir, "pgdata")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return "", s, fmt.Errorf("create %s: %w", data, err)
	}
	as, err := runAs(dir)
	if err != nil {
		return "", s, err
	}
	if out, err := as(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8").CombinedOutput(); err != nil {
		return "", s, fmt.Errorf("initdb in %s: %w: %s", data, err, out)
	}
	opts := strings.Join([]string{
		"-p " + strconv.Itoa(port), "-c listen_addresses=127.0.0.1", "-c unix_socket_directories=" + dir,
		"-c shared_buffers=128MB", "-c max_connections=200", "-c fsync=on", "-c synchronous_commit=on",
		"-c track_io_timing=on", "-c max_wal_size=4GB", "-c checkpoint_timeout=15min",
	}, " ")
	logFile := filepath.Join(dir, "postgres.log")
	if out, err := as(ctx, filepath.Join(bin, "pg_ctl"), "-D", data, "-l", logFile, "-o", opts, "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		return "", s, fmt.Errorf("start postgres on port %d: %w: %s (log: %s)", port, err, out, logFile)
	}
	s.stop = func() {
		_ = as(context.Background(), filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop").Run()
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), s, nil
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
		return "", errors.New("no initdb found (install PostgreSQL's server package, or set BENCH_DATABASE_URL)")
	}
	return filepath.Dir(matches[len(matches)-1]), nil
}

// startRedis starts a redis-server that keeps nothing on disk on a free
// loopback port.
func startRedis(ctx context.Context, dir string) (url string, s server, err error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return "", s, errors.New("no redis-server binary to start a throwaway one")
	}
	port, err := freePort()
	if err != nil {
		return "", s, err
	}
	cmd := exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return "", s, fmt.Errorf("start redis-server: %w", err)
	}
	s.stop = func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	url = fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Ping(ctx).Err() != nil {
		if time.Now().After(deadline) {
			s.stop()
			return "", s, fmt.Errorf("redis-server on port %d did not answer within 10s", port)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return url, s, nil
}

// benchDatabase creates a database of its own in the server dsn (a
// postgres:// URL) points at and returns its DSN and a function that drops
// it. Errors never echo the DSN: it may hold a password.
func benchDatabase(ctx context.Context, dsn string) (string, func(), error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, errors.New("BENCH_DATABASE_URL must be a postgres:// URL")
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", nil, fmt.Errorf("connect to BENCH_DATABASE_URL's server %s: %w", u.Host, err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("ebb_bench_%d", time.Now().UnixNano()%1_000_000_000)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	drop := func() {
		c, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

// freePort returns a loopback port nobody listens on.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// openPool opens a pool of at most n connections on dsn.
func openPool(ctx context.Context, dsn string, n int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse the benchmark's DSN: %w", err)
	}
	cfg.MaxConns = n
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	return pool, nil
}
