// Package guard decides whether and how fast the fleet may write. It owns
// the pause switches (ebb's global and per-job keys, asynq's queue pause),
// the probes that sample load signals, the rules that turn them into run,
// slow or pause, the leader loop that publishes that decision, and the
// Follower that turns it into each batch's limits. Guard fails closed: a
// value it cannot read as "off", a probe that errors and a decision that is
// not fresh never count as a green light.
package guard

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/ebbhq/ebb/internal/ledger"
)

// Pause is the outcome of one pause check.
type Pause struct {
	Paused bool
	// Reason names the switch that paused the job, for logs and status.
	Reason string
}

// Pauser checks the pause switches of a job.
type Pauser struct {
	ledger *ledger.Ledger
	log    *slog.Logger
}

// NewPauser returns a Pauser. A nil logger discards.
func NewPauser(l *ledger.Ledger, log *slog.Logger) *Pauser {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Pauser{ledger: l, log: log}
}

// Check reads the switches for job on queue. An error reading Redis is
// returned, never reported as "not paused".
func (p *Pauser) Check(ctx context.Context, job, queue string) (Pause, error) {
	f, err := p.ledger.PauseFlags(ctx, job, queue)
	if err != nil {
		return Pause{}, err
	}
	return p.Judge(ctx, job, queue, f), nil
}

// Judge reads switches already fetched (the runner reads them with the rest
// of a batch's controls in one round trip).
func (p *Pauser) Judge(ctx context.Context, job, queue string, f ledger.PauseFlags) Pause {
	if on, odd := FlagOn(f.Global); on {
		p.warnOdd(ctx, odd, p.ledger.GlobalPauseKey(), f.Global)
		return Pause{Paused: true, Reason: FlagReason(p.ledger.GlobalPauseKey(), f.Global)}
	}
	if on, odd := FlagOn(f.Job); on {
		p.warnOdd(ctx, odd, p.ledger.PauseKey(job), f.Job)
		return Pause{Paused: true, Reason: FlagReason(p.ledger.PauseKey(job), f.Job)}
	}
	if f.QueuePaused {
		return Pause{Paused: true, Reason: fmt.Sprintf("asynq queue %q is paused (Asynqmon or %s)", queue, ledger.QueuePausedKey(queue))}
	}
	return Pause{}
}

func (p *Pauser) warnOdd(ctx context.Context, odd bool, key, value string) {
	if odd {
		p.log.WarnContext(ctx, "unrecognised pause value treated as paused",
			slog.String("key", key), slog.String("value", value),
			slog.String("hint", "use 1 to pause; delete the key or set 0/false/off to resume"))
	}
}

// FlagOn reads a pause key's value. Only "", "0", "false" and "off" mean not
// paused; anything else pauses, and odd is true when the value is not one of
// the usual "on" words, so a typo pauses loudly instead of being ignored.
// enqueuer and the on-call page store who paused and when ("paused by
// alice@host via enqueuer at 2024-05-01T10:00:00Z"): a value starting with
// "paused by" is a usual one.
func FlagOn(v string) (on, odd bool) {
	v = strings.ToLower(strings.TrimSpace(v))
	switch v {
	case "", "0", "false", "off":
		return false, false
	case "1", "true", "on", "yes", "paused":
		return true, false
	}
	return true, !strings.HasPrefix(v, PausedByPrefix)
}

// FlagReason is the pause reason of a set flag, the same in workers' logs
// and in status: the key, plus its value when that says more than "1"
// (who paused and when, or an odd value worth seeing).
func FlagReason(key, value string) string {
	if v := strings.TrimSpace(value); v != "1" {
		return fmt.Sprintf("%s is set (%s)", key, v)
	}
	return key + " is set"
}

// PausedByPrefix starts the pause value enqueuer and the on-call page write:
// "paused by WHO at TIME". FlagOn reads it as on, without a warning.
const PausedByPrefix = "paused by "
