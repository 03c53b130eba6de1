package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"time"

	"github.com/ebbhq/ebb/internal/control"
	"github.com/ebbhq/ebb/internal/dial"
)

const pauseHelp = `enqueuer pause [JOB]

Pauses one job (sets ebb:{JOB}:pause) or, without JOB, every job (sets
ebb:pause). Workers finish the batch in flight, commit, checkpoint and hand
the range back; nothing is cut halfway. The flag's value records who paused
and when ("paused by USER@HOST via enqueuer at TIME"), which status shows.
Same as: redis-cli SET 'ebb:{JOB}:pause' 1
`

const resumeHelp = `enqueuer resume [JOB] [--override-guard [--for 30m] | --end-override]

Clears the pause flag of one job or, without JOB, the global one. Workers pick
the ranges up again within seconds. When the guard itself holds the job
(one of its rules fired), resume says so and which rule: the job stays
paused until the rule clears.

--override-guard makes the fleet ignore the job's guard for --for (default
30m, at most 24h), like gh-ost's no-throttle: the job runs at its own limits
whatever the rules say. It is recorded with who and until when, shown by
status and the on-call page, and ends by itself; --end-override ends it
early.
`

// operator names who runs enqueuer, USER@HOST, for the pause flag's value.
// Containers often have no passwd entry for the uid: fall back to $USER,
// then to the uid, rather than refuse to pause.
func operator(e *env) string {
	name := e.getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = "uid " + strconv.Itoa(os.Getuid())
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return name + "@" + host + " via enqueuer"
}

func runPause(ctx context.Context, e *env, args []string) error {
	return setPause(ctx, e, args, true)
}

func runResume(ctx context.Context, e *env, args []string) error {
	return setPause(ctx, e, args, false)
}

func setPause(ctx context.Context, e *env, args []string, pause bool) error {
	name, help := "resume", resumeHelp
	if pause {
		name, help = "pause", pauseHelp
	}
	fs := newFlags(name, help, e)
	var override, endOverride *bool
	var overrideFor *time.Duration
	if !pause {
		override = fs.Bool("override-guard", false, "run the job whatever its guard says, for --for")
		overrideFor = fs.Duration("for", control.DefaultOverrideFor, "how long --override-guard lasts (at most 24h)")
		endOverride = fs.Bool("end-override", false, "end an --override-guard before it expires")
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return bad("%s takes at most one JOB, got %v", name, pos)
	}
	job := ""
	if len(pos) == 1 {
		job = pos[0]
	}
	c, closeFn, err := connect(ctx, e)
	if err != nil {
		return err
	}
	defer closeFn()
	l := c.Ledger()
	key := l.GlobalPauseKey()
	if job != "" {
		key = l.PauseKey(job)
	}
	if pause {
		if err := c.Pause(ctx, job, operator(e)); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "paused: %s set on %s; workers stop after the batch in flight\n", key, redisShown(e))
		return nil
	}
	if (*override || *endOverride) && job == "" {
		return bad("--override-guard and --end-override act on one job: name it")
	}
	switch {
	case *endOverride:
		if err := c.EndGuardOverride(ctx, job, operator(e)); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "guard override of %s ended on %s: the guard's decisions apply again\n", job, redisShown(e))
		return nil
	case *override:
		o, err := c.OverrideGuard(ctx, job, operator(e), *overrideFor)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "resumed: %s cleared on %s, and the guard is overridden until %s (by %s): workers ignore its rules until then; end it early with enqueuer resume %s --end-override\n",
			key, redisShown(e), o.Until.Format(time.RFC3339), o.By, job)
		return nil
	}
	if err := c.Resume(ctx, job, operator(e)); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "resumed: %s cleared on %s\n", key, redisShown(e))
	if job != "" {
		hold, err := c.GuardHold(ctx, job)
		if err != nil {
			return err
		}
		if hold != "" {
			fmt.Fprintf(e.stdout, "but the job stays paused: %s\nit runs again once that clears; to run it anyway: enqueuer resume %s --override-guard [--for 30m]\n", hold, job)
		}
	}
	return nil
}

// redisShown names the Redis a command acted on, without its password:
// a pause sent to the wrong Redis succeeds there and pauses nothing, and
// this line is where the operator can see it.
func redisShown(e *env) string {
	if u := e.getenv("REDIS_URL"); u != "" {
		return dial.Redact(u)
	}
	return dial.Redact(dial.DefaultRedisURL) + " (REDIS_URL is not set)"
}
