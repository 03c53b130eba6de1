// Command enqueuer is ebb's operator binary: plan a job, start it, watch its
// status, pause and resume it. Exit codes: 0 ok, 1 a server could not be
// reached or a command failed, 2 bad input (job file, flags, unknown job,
// preflight refusal).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/dial"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/logger"
	"github.com/ebbhq/ebb/internal/preflight"
	"github.com/ebbhq/ebb/internal/rangetask"
	"github.com/ebbhq/ebb/internal/signing"

	// Schedules name IANA time zones; a slim image may have no zoneinfo.
	_ "time/tzdata"
)

const usage = `enqueuer plans, starts and steers ebb backfill jobs.

Usage:
  enqueuer plan -job FILE [--json] [--runbook]
                                       validate, preflight and EXPLAIN a job; nothing is written;
                                       --runbook prints a Markdown runbook for on-call
  enqueuer start -job FILE [-queue Q]  store the job in Redis and enqueue its ranges (safe to repeat);
                                       --dry-run rolls every batch back
  enqueuer status [JOB] [--json]       progress of one job, or a list of every job
  enqueuer status JOB --watch          follow one job until it ends (bars on a terminal, else a line per poll)
  enqueuer pause [JOB]                 pause one job (ebb:{JOB}:pause), or every job (ebb:pause)
  enqueuer resume [JOB]                resume one job, or clear the global pause
  enqueuer set JOB --rate N ...        change a running job's rate, max workers, batch max or sleep live
  enqueuer verify JOB [--json] [--sample] [--repair]
                                       read every row (in paced chunks): rows left pending or failing check:;
                                       exit 1 on problems; --sample spot-checks only
  enqueuer repair JOB [--json]         verify, then reopen and enqueue again every range holding pending rows
  enqueuer cleanup JOB [--force] [--json]
                                       remove the job's Redis keys and asynq tasks (refuses while it runs)
  enqueuer ui [-addr 127.0.0.1:8080] [-auth-token TOKEN]
                                       web page for on-call: every job, guard, Pause/Resume, Asynqmon at /monitoring

Every command takes -log-format text|json (default text) for its log lines
on stderr; ui logs at info (who paused what), the others warnings only.

Environment:
  REDIS_URL    Redis of the fleet (default redis://127.0.0.1:6379/0)
  EBB_PREFIX   key prefix of ebb's Redis keys (default "ebb:")
  the job's database_env (default DATABASE_URL) holds the database DSN

Run "enqueuer COMMAND -h" for the flags of a command.
`

// exit codes
const (
	exitOK       = 0
	exitFailed   = 1
	exitBadInput = 2
)

// usageError is bad input from the operator: exit 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func bad(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

type command struct {
	name string
	run  func(ctx context.Context, env *env, args []string) error
}

var commands = []command{
	{"plan", runPlan},
	{"start", runStart},
	{"status", runStatus},
	{"pause", runPause},
	{"resume", runResume},
	{"set", runSet},
	{"ui", runUI},
	{"cleanup", runCleanup},
	{"verify", runVerify},
	{"repair", runRepair},
}

// env is what every command shares.
type env struct {
	stdout, stderr io.Writer
	// log is built by -log-format (logFlag) at level; a command that logs
	// more than warnings raises level before it starts.
	log       *slog.Logger
	logFormat logger.Format
	level     *slog.LevelVar
	// getenv is os.Getenv, or a map in tests that run in parallel.
	getenv func(string) string
}

func main() {
	dial.QuietRedisLogs()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return exitBadInput
		}
		return exitOK
	}
	// One-shot commands print their results; their log says only what went
	// wrong on the way.
	level := new(slog.LevelVar)
	level.Set(slog.LevelWarn)
	e := &env{stdout: stdout, stderr: stderr, getenv: getenv, level: level, logFormat: logger.Text, log: logger.New(stderr, logger.Text, level)}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, e, args[1:])
		if err == nil {
			return exitOK
		}
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		var vf verifyFailed
		if errors.As(err, &vf) {
			// The report on stdout already says what is wrong.
			return exitFailed
		}
		fmt.Fprintf(stderr, "enqueuer %s: %v\n", c.name, err)
		var ue usageError
		var je *jobspec.Error
		if errors.As(err, &ue) || errors.As(err, &je) || preflight.IsRefused(err) ||
			errors.Is(err, control.ErrUnknownJob) || errors.Is(err, control.ErrEmpty) || errors.Is(err, rangetask.ErrBadQueue) || errors.Is(err, control.ErrBadGuard) ||
			errors.Is(err, control.ErrDryRunMismatch) || errors.Is(err, control.ErrJobActive) || errors.Is(err, control.ErrKeyChanged) ||
			errors.Is(err, control.ErrTooManyRanges) || errors.Is(err, signing.ErrBadKey) || errors.Is(err, control.ErrNoRoom) || errors.Is(err, control.ErrJobFinished) ||
			errors.Is(err, control.ErrBadOverrideFor) {
			return exitBadInput
		}
		return exitFailed
	}
	fmt.Fprintf(stderr, "enqueuer: unknown command %q\n\n%s", args[0], usage)
	return exitBadInput
}

// parse parses flags that may come before or after positional arguments
// ("status JOB --json" and "status --json JOB" both work).
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func newFlags(name, help string, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Var(logFlag{e}, "log-format", logger.Usage)
	fs.Usage = func() {
		fmt.Fprint(e.stdout, help)
		fs.SetOutput(e.stdout)
		fs.PrintDefaults()
		fs.SetOutput(e.stderr)
	}
	return fs
}

// logFlag is -log-format on every command: it sets the format the way the
// worker's flag does and rebuilds the shared logger with it.
type logFlag struct{ e *env }

func (l logFlag) String() string {
	// flag.PrintDefaults calls String on a zero logFlag.
	if l.e == nil {
		return string(logger.Text)
	}
	return l.e.logFormat.String()
}

func (l logFlag) Set(s string) error {
	if err := l.e.logFormat.Set(s); err != nil {
		return err
	}
	l.e.log = logger.New(l.e.stderr, l.e.logFormat, l.e.level)
	return nil
}

// connect opens Redis and returns a Control on it; close releases both.
func connect(ctx context.Context, e *env) (*control.Control, func(), error) {
	rdb, err := dial.Redis(ctx, e.getenv("REDIS_URL"), e.getenv(dial.RedisCAEnv))
	if err != nil {
		return nil, nil, err
	}
	c := control.New(rdb, e.getenv("EBB_PREFIX"), e.log)
	c.SetGetenv(e.getenv)
	return c, func() { _ = c.Close(); _ = rdb.Close() }, nil
}
