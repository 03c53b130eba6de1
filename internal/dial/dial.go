// Package dial opens ebb's connections to Redis and PostgreSQL from
// environment variables, checks they answer, and words failures so an
// operator knows what to fix. No error or log line from here ever contains a
// password: URLs are reduced to host, port and database before printing.
package dial

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// DefaultRedisURL is used when REDIS_URL is unset.
const DefaultRedisURL = "redis://127.0.0.1:6379/0"

// pingTimeout bounds the first contact so a wrong address fails in seconds,
// not after the OS's connect timeout.
const pingTimeout = 5 * time.Second

// RedisCAEnv names the environment variable holding the PEM file of the
// CA that signed Redis's certificate, for a rediss:// URL whose server
// the system's roots do not vouch for.
const RedisCAEnv = "REDIS_CA_FILE"

// Redis opens a client for rawURL ("" = the default) and pings it.
// rediss:// speaks TLS, verifying the server against the system's roots,
// or against caFile (PEM) when it is set; a user and password in the URL
// log in as that Redis ACL user. The caller closes the client.
func Redis(ctx context.Context, rawURL, caFile string) (*redis.Client, error) {
	if rawURL == "" {
		rawURL = DefaultRedisURL
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL %s is not a valid redis:// or rediss:// URL: %w", Redact(rawURL), redactErr(err, rawURL))
	}
	if caFile != "" {
		if opts.TLSConfig == nil {
			return nil, fmt.Errorf("%s is set but REDIS_URL %s is not rediss://: use rediss:// for TLS, or unset %s", RedisCAEnv, Redact(rawURL), RedisCAEnv)
		}
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", RedisCAEnv, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s %s holds no PEM certificate", RedisCAEnv, caFile)
		}
		opts.TLSConfig.RootCAs = pool
	}
	rdb := redis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("cannot reach Redis at %s (REDIS_URL): %w; is it running? start it or point REDIS_URL at it", Redact(rawURL), redactErr(err, rawURL))
	}
	return rdb, nil
}

// keepalive are the server's TCP settings for ebb's sessions; a DSN that
// sets one keeps its own.
func keepalive() map[string]string {
	return map[string]string{
		"tcp_keepalives_idle":     "10",
		"tcp_keepalives_interval": "5",
		"tcp_keepalives_count":    "2",
		"tcp_user_timeout":        "20000",
	}
}

// Postgres opens a pool from the DSN in environment variable env and pings
// it. The caller closes the pool.
func Postgres(ctx context.Context, env string) (*pgxpool.Pool, error) {
	return PostgresDSN(ctx, env, os.Getenv(env))
}

// PostgresDSN opens a pool from a DSN; env names its source in errors.
func PostgresDSN(ctx context.Context, env, dsn string) (*pgxpool.Pool, error) {
	if dsn == "" {
		return nil, fmt.Errorf("environment variable %s is empty; set it to the database's DSN (postgres://user@host:5432/db) on this process", env)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The unwrapped reason leaves the DSN out, but pgx gives some
		// reasons (e.g. "invalid port") no inner error; its own message
		// masks the password, and redactErr masks it again.
		cause := errors.Unwrap(err)
		if cause == nil {
			cause = err
		}
		return nil, fmt.Errorf("%s is not a valid PostgreSQL DSN: %w", env, redactErr(cause, dsn))
	}
	// DBAs tell ebb's sessions apart by it; a DSN that names its own
	// (application_name=…) keeps it, to tell fleets apart.
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "ebb"
	}
	// The server drops a session whose client stopped answering on the
	// network (a partitioned or vanished worker) within about 20 s, below
	// asynq's 30 s lease, instead of the kernel's two hours: its locks go
	// with it. A worker that is merely frozen still answers TCP; the batch
	// transaction's idle_in_transaction_session_timeout covers that one.
	for k, v := range keepalive() {
		if _, set := cfg.ConnConfig.RuntimeParams[k]; !set {
			cfg.ConnConfig.RuntimeParams[k] = v
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL pool from %s: %w", env, redactErr(err, dsn))
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("cannot reach PostgreSQL at %s (%s): %w; is it running and does the DSN name the right database?", Redact(dsn), env, redactErr(err, dsn))
	}
	return pool, nil
}

// Pools caches one pool per DSN environment variable, for workers that serve
// jobs on several databases. Close closes them all.
type Pools struct {
	// Getenv reads the DSN variables; nil means os.Getenv.
	Getenv func(string) string
	mu     sync.Mutex
	pools  map[string]*pgxpool.Pool
}

// Get returns the pool for env, opening it on first use.
func (p *Pools) Get(ctx context.Context, env string) (*pgxpool.Pool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pool, ok := p.pools[env]; ok {
		return pool, nil
	}
	getenv := p.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	pool, err := PostgresDSN(ctx, env, getenv(env))
	if err != nil {
		return nil, err
	}
	if p.pools == nil {
		p.pools = map[string]*pgxpool.Pool{}
	}
	p.pools[env] = pool
	return pool, nil
}

// Each calls fn for every open pool (for readiness checks).
func (p *Pools) Each(fn func(env string, pool *pgxpool.Pool)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for env, pool := range p.pools {
		fn(env, pool)
	}
}

// Close closes every pool.
func (p *Pools) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pool := range p.pools {
		pool.Close()
	}
	p.pools = nil
}

// Redact reduces a connection URL or DSN to scheme://host/db, dropping user
// info and parameters, so it can be printed.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable address)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// redactErr removes the password from an error message, for libraries that
// echo what they were given.
func redactErr(err error, raw string) error {
	if err == nil {
		return nil
	}
	pw := password(raw)
	if pw == "" {
		return err
	}
	return redacted{err: err, pw: pw}
}

// password finds the password in a URL. A URL that url.Parse rejects (a bad
// port, a stray %) is exactly the one whose parse error quotes it whole, so
// then the password is cut out by hand: what follows the first ':' of the
// text between "://" and the last '@'.
func password(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		if u.User == nil {
			return ""
		}
		pw, _ := u.User.Password()
		return pw
	}
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return ""
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return ""
	}
	_, pw, _ := strings.Cut(rest[:at], ":")
	return pw
}

type redacted struct {
	err error
	pw  string
}

func (r redacted) Error() string { return strings.ReplaceAll(r.err.Error(), r.pw, "xxxxx") }
func (r redacted) Unwrap() error { return r.err }

// QuietRedisLogs stops go-redis from printing its own connection-pool lines:
// ebb reports every Redis failure itself, once, with what to do. It sets
// go-redis's process-wide logger, so only main packages call it.
func QuietRedisLogs() { redis.SetLogger(quiet{}) }

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}
