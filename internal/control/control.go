// Package control is the operator's side of ebb, as asynq's Client and
// Inspector are the producer's side of asynq. It holds one file per command:
// plan (validate a job against the database), start (store the spec, slice
// the key space, enqueue one task per range, idempotently), pause and resume,
// set (live overrides), status, verify and cleanup. cmd/enqueuer only parses
// flags and prints. The range task itself belongs to rangetask, which the
// workers share; control never imports the worker's runner.
package control

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/ebbhq/ebb/internal/ledger"
)

// Control runs operator commands. The caller owns and closes rdb.
type Control struct {
	ledger    *ledger.Ledger
	client    *asynq.Client
	inspector *asynq.Inspector
	log       *slog.Logger
	getenv    func(string) string
}

// New returns a Control on rdb with the given key prefix ("" = default).
func New(rdb redis.UniversalClient, prefix string, log *slog.Logger) *Control {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Control{
		ledger:    ledger.New(rdb, prefix),
		client:    asynq.NewClientFromRedisClient(rdb),
		inspector: asynq.NewInspectorFromRedisClient(rdb),
		log:       log,
	}
}

// Ledger exposes the ledger the control reads.
func (c *Control) Ledger() *ledger.Ledger { return c.ledger }

// ErrUnknownJob means no job of that name was ever started on this Redis.
var ErrUnknownJob = errors.New("unknown job")

// Jobs lists the names of every started job.
func (c *Control) Jobs(ctx context.Context) ([]string, error) { return c.ledger.Jobs(ctx) }

// Close releases the asynq client and inspector; the Redis client stays
// open because the caller owns it.
func (c *Control) Close() error {
	// Both were built from a caller's client, so closing them does not
	// close that client.
	return errors.Join(c.client.Close(), c.inspector.Close())
}
