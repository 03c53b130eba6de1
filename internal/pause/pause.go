// Package pause owns the pause switches operators flip: what a pause flag
// holds (FlagValue), how a value reads (FlagOn), and how a pause is worded
// in workers' logs, status and the on-call page (FlagReason, QueueReason,
// OverrideReason), so every surface says the same thing. The keys
// themselves are the ledger's; the guard's own pause is a decision
// (package guard), never one of these flags. A value that does not read as
// "off" pauses: switches fail closed.
package pause

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/ebbhq/ebb/internal/ledger"
)

// Outcome is the verdict of a job's pause switches.
type Outcome struct {
	Paused bool
	// Reason names the switch that paused the job, for logs and status.
	Reason string
}

// Pauser judges the pause switches of a job.
type Pauser struct {
	ledger *ledger.Ledger
	log    *slog.Logger
}

// NewPauser returns a Pauser. The ledger names the keys in reasons and
// warnings; a nil logger discards.
func NewPauser(l *ledger.Ledger, log *slog.Logger) *Pauser {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Pauser{ledger: l, log: log}
}

// Judge reads switches already fetched (the runner reads them with the rest
// of a batch's controls in one round trip), in order: the global flag, the
// job's flag, asynq's queue pause. An odd flag value pauses and is logged.
func (p *Pauser) Judge(ctx context.Context, job, queue string, f ledger.PauseFlags) Outcome {
	if on, odd := FlagOn(f.Global); on {
		p.warnOdd(ctx, odd, p.ledger.GlobalPauseKey(), f.Global)
		return Outcome{Paused: true, Reason: FlagReason(p.ledger.GlobalPauseKey(), f.Global)}
	}
	if on, odd := FlagOn(f.Job); on {
		p.warnOdd(ctx, odd, p.ledger.PauseKey(job), f.Job)
		return Outcome{Paused: true, Reason: FlagReason(p.ledger.PauseKey(job), f.Job)}
	}
	if f.QueuePaused {
		// Workers also say where the switch is; status shows the queue's
		// own state next to it.
		return Outcome{Paused: true, Reason: fmt.Sprintf("%s (Asynqmon or %s)", QueueReason(queue), ledger.QueuePausedKey(queue))}
	}
	return Outcome{}
}

// FlagValue is what a pause flag set by ebb holds: "paused by BY at TIME"
// (RFC 3339, UTC), so status shows whom to ask before resuming. FlagOn reads
// it as on; redis-cli SET … 1 still works, it only says nothing about who.
func FlagValue(by string, at time.Time) string {
	if by == "" {
		by = "unknown"
	}
	return pausedByPrefix + by + " at " + at.UTC().Format(time.RFC3339)
}

// FlagOn reads a pause key's value. Only "", "0", "false" and "off" mean not
// paused; anything else pauses, and odd is true when the value is not one of
// the usual "on" words, so a typo pauses loudly instead of being ignored.
// enqueuer and the on-call page store who paused and when (FlagValue): a
// value starting with "paused by" is a usual one.
func FlagOn(v string) (on, odd bool) {
	v = strings.ToLower(strings.TrimSpace(v))
	switch v {
	case "", "0", "false", "off":
		return false, false
	case "1", "true", "on", "yes", "paused":
		return true, false
	}
	return true, !strings.HasPrefix(v, pausedByPrefix)
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

// QueueReason is the pause reason while asynq's queue is paused (Asynqmon's
// pause button, which also pauses the fleet).
func QueueReason(queue string) string {
	return fmt.Sprintf("asynq queue %q is paused", queue)
}

// OverrideReason is the pause reason while a live override does not parse:
// the worker pauses the job rather than guess (fail closed, like an odd
// flag value). detail names the key and field.
func OverrideReason(detail string) string {
	return "bad live override, fix it with enqueuer set: " + detail
}

// pausedByPrefix starts every FlagValue; FlagOn reads it as on, without a
// warning.
const pausedByPrefix = "paused by "

// GuardReason is the reason of a pause or slow-down the guard decided: its
// reasons, or its state when it gave none.
func GuardReason(state string, reasons []string) string {
	if len(reasons) == 0 {
		return "guard: " + state
	}
	return "guard: " + strings.Join(reasons, "; ")
}

// NoDecisionReason is the pause reason once no worker has renewed the
// guard's decision for age: workers pause on their own then, and status
// says so in the same words.
func NoDecisionReason(age time.Duration) string {
	return fmt.Sprintf("guard: no fresh decision for %s (no worker renews the guard lease; are workers running? see enqueuer status)", age.Round(time.Second))
}

func (p *Pauser) warnOdd(ctx context.Context, odd bool, key, value string) {
	if odd {
		p.log.WarnContext(ctx, "unrecognised pause value treated as paused",
			slog.String("key", key), slog.String("value", value),
			slog.String("hint", "use 1 to pause; delete the key or set 0/false/off to resume"))
	}
}
