package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strconv"

	"github.com/ebbhq/ebb/internal/dial"
)

const pauseHelp = `enqueuer pause [JOB]

Pauses one job (sets ebb:{JOB}:pause) or, without JOB, every job (sets
ebb:pause). Workers finish the batch in flight, commit, checkpoint and hand
the range back; nothing is cut halfway. The flag's value records who paused
and when ("paused by USER@HOST via enqueuer at TIME"), which status shows.
Same as: redis-cli SET 'ebb:{JOB}:pause' 1
`

const resumeHelp = `enqueuer resume [JOB]

Clears the pause flag of one job or, without JOB, the global one. Workers pick
the ranges up again within seconds.
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
	if err := c.Resume(ctx, job, operator(e)); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "resumed: %s cleared on %s\n", key, redisShown(e))
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
