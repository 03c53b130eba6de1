// Package throwaway starts PostgreSQL and Redis servers of ebb's own, on
// free loopback ports, from the binaries installed on the machine: for the
// benchmark (a small buffer cache, INFO commandstats nobody else adds to)
// and for fault tests, which must stop, restart and lose servers that no
// other test uses. A Server can be stopped and started again on the same
// port and data directory, as a restart or a failover looks to a client.
package throwaway

import (
	"context"
	"crypto/x509"
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
	// Password, when set, is the postgres user's, and TCP connections
	// must give it (scram-sha-256); the URL carries it.
	Password string
	// TLS, when set, turns ssl on with these files (copied into the
	// cluster's directory, where the server can read them).
	TLS *TLS
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
	initdb := []string{"-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"}
	if o.Password != "" {
		pwFile := filepath.Join(dir, "pwfile")
		if err := os.WriteFile(pwFile, []byte(o.Password+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", pwFile, err)
		}
		initdb = append(initdb, "--pwfile="+pwFile, "--auth-host=scram-sha-256", "--auth-local=trust")
	}
	settings := append([]string{"listen_addresses=127.0.0.1", "unix_socket_directories=" + dir, "max_connections=200"}, o.Settings...)
	if o.TLS != nil {
		t, err := copyTLS(*o.TLS, dir)
		if err != nil {
			return nil, err
		}
		settings = append(settings, "ssl=on", "ssl_cert_file="+t.CertFile, "ssl_key_file="+t.KeyFile)
	}
	as, err := runAs(dir)
	if err != nil {
		return nil, err
	}
	if out, err := as(ctx, filepath.Join(bin, "initdb"), initdb...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb in %s: %w: %s", data, err, out)
	}
	opts := []string{"-p " + strconv.Itoa(port)}
	for _, set := range settings {
		opts = append(opts, "-c "+set)
	}
	logFile := filepath.Join(dir, "postgres.log")
	user, sslmode := "postgres", "disable"
	if o.Password != "" {
		user = "postgres:" + url.QueryEscape(o.Password)
	}
	if o.TLS != nil {
		sslmode = "verify-full&sslrootcert=" + url.QueryEscape(o.TLS.CAFile)
	}
	s := &Server{URL: fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=%s", user, port, sslmode), Port: port}
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
	// User and Password, when set, make an ACL user that may do
	// everything, and turn the default user off; the URL carries both.
	User, Password string
	// TLS, when set, serves only TLS (rediss://) with these files; clients
	// need no certificate of their own.
	TLS *TLS
	// MaxMemory, when set, is maxmemory (e.g. "2mb"), with noeviction.
	MaxMemory string
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
	scheme, userinfo := "redis", ""
	if o.TLS != nil {
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(port), "--tls-cert-file", o.TLS.CertFile,
			"--tls-key-file", o.TLS.KeyFile, "--tls-ca-cert-file", o.TLS.CAFile, "--tls-auth-clients", "no")
		scheme = "rediss"
	}
	if o.Password != "" {
		args = append(args, "--user", "default", "off", "--user", o.User, "on", ">"+o.Password, "~*", "&*", "+@all")
		userinfo = url.UserPassword(o.User, o.Password).String() + "@"
	}
	if o.MaxMemory != "" {
		args = append(args, "--maxmemory", o.MaxMemory, "--maxmemory-policy", "noeviction")
	}
	if o.AOF {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	s := &Server{URL: fmt.Sprintf("%s://%s127.0.0.1:%d/0", scheme, userinfo, port), Port: port}
	ping, err := redis.ParseURL(s.URL)
	if err != nil {
		return nil, err
	}
	if o.TLS != nil {
		pool, err := certPool(o.TLS.CAFile)
		if err != nil {
			return nil, err
		}
		ping.TLSConfig.RootCAs = pool
	}
	var cmd *exec.Cmd
	s.start = func(ctx context.Context) error {
		cmd = exec.Command(path, args...)
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start redis-server: %w", err)
		}
		rdb := redis.NewClient(ping)
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

// copyTLS copies t's files into dir, where a server that runs as another
// user can be given them.
func copyTLS(t TLS, dir string) (TLS, error) {
	out := TLS{CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server-key.pem"), CAFile: filepath.Join(dir, "ca.pem")}
	for _, f := range [][2]string{{t.CertFile, out.CertFile}, {t.KeyFile, out.KeyFile}, {t.CAFile, out.CAFile}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			return TLS{}, err
		}
		if err := os.WriteFile(f[1], b, 0o600); err != nil {
			return TLS{}, err
		}
	}
	return out, nil
}

// certPool reads a PEM CA file.
func certPool(caFile string) (*x509.CertPool, error) {
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return pool, nil
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
