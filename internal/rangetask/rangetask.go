// Package rangetask owns the range task, the one message ebb puts on asynq:
// its type name, its payload and that payload's strict encoding, its
// deterministic task ID (and the parse of one back into job and range), its
// asynq options, and the queue names it may go to. Both sides share it the
// way asynq's client and server share a task type: the operator side
// (control) builds and inspects range tasks, the worker side (runner) decodes
// and walks them, and neither imports the other. What a range task means —
// walking it, checkpointing it — is left to runner; which ranges exist is
// left to keyspace and the ledger.
package rangetask

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/ebbhq/ebb/internal/keyspace"
	"github.com/ebbhq/ebb/internal/signing"
)

// TaskType is the asynq type of a range task.
const TaskType = "ebb:range"

// DefaultQueue is the asynq queue ranges go to unless told otherwise.
const DefaultQueue = "ebb"

// Payload is the body of a range task. The job's spec is not in it: workers
// load the spec from the ledger, so a task cannot carry its own SQL.
type Payload struct {
	Job   string `json:"job"`
	Range int64  `json:"range"`
	// Lo and Hi bound the range, inclusive, in keyspace's JSON: an integer
	// key is the number itself, as in tasks enqueued before key shapes.
	Lo keyspace.Key `json:"lo"`
	Hi keyspace.Key `json:"hi"`
	// After makes Lo exclusive (keyspace.Range.After): set only on text
	// ranges past the first, and left out of the JSON otherwise so integer
	// and uuid tasks are byte for byte what they were.
	After bool `json:"after,omitempty"`
	// Sig is the payload's signature (Sign), over its encoding without
	// Sig; absent from tasks enqueued without EBB_SIGNING_KEY.
	Sig string `json:"sig,omitempty"`
}

// Sign returns p signed with k (unchanged without a key).
func (p Payload) Sign(k signing.Key) (Payload, error) {
	if !k.Enabled() {
		return p, nil
	}
	p.Sig = ""
	b, err := p.Encode()
	if err != nil {
		return p, err
	}
	p.Sig = k.Sign(signing.KindTask, b)
	return p, nil
}

// Verify checks p's signature with k; without a key every payload passes.
// A mismatch wraps signing.ErrMismatch.
func (p Payload) Verify(k signing.Key) error {
	if !k.Enabled() {
		return nil
	}
	sig := p.Sig
	p.Sig = ""
	b, err := p.Encode()
	if err != nil {
		return err
	}
	if err := k.Verify(signing.KindTask, b, sig); err != nil {
		return fmt.Errorf("%s range %d: %w", p.Job, p.Range, err)
	}
	return nil
}

// Encode returns the payload as a task body.
func (p Payload) Encode() ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode task of %s range %d: %w", p.Job, p.Range, err)
	}
	return b, nil
}

// Decode reads a task body strictly: unknown fields, a missing job and
// inverted bounds are refused, because a worker must never guess what range
// a hand-made task meant.
func Decode(b []byte) (Payload, error) {
	var p Payload
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Payload{}, fmt.Errorf("decode range task: %w", err)
	}
	if p.Job == "" || keyspace.Inverted(p.Lo, p.Hi) {
		return Payload{}, fmt.Errorf("decode range task: %w", errMissingJobOrInverted)
	}
	return p, nil
}

// NewTask builds the asynq task of a range and returns its TaskID. The ID is
// deterministic, so enqueuing the same range twice is rejected by asynq as a
// conflict. Job names never contain { or } (jobspec refuses them), so
// neither do TaskIDs, which would break asynq's hash tags on a cluster.
func NewTask(p Payload) (*asynq.Task, string, error) {
	b, err := p.Encode()
	if err != nil {
		return nil, "", err
	}
	return asynq.NewTask(TaskType, b), TaskID(p.Job, p.Range), nil
}

// TaskID is the deterministic asynq TaskID of a range: "JOB:rID".
func TaskID(job string, rangeID int64) string {
	return job + idSep + strconv.FormatInt(rangeID, 10)
}

// ErrNotRangeTaskID is a task ID that TaskID cannot have made.
var ErrNotRangeTaskID = errors.New("not a range task ID")

// ParseTaskID splits a TaskID back into its job and range ID. Only IDs that
// TaskID makes parse: the separator is the last ":r", and the range ID must
// be written the way TaskID writes it (no "+", no leading zeros).
func ParseTaskID(id string) (job string, rangeID int64, err error) {
	i := strings.LastIndex(id, idSep)
	if i <= 0 {
		return "", 0, fmt.Errorf("%w: %q", ErrNotRangeTaskID, id)
	}
	job = id[:i]
	rangeID, err = strconv.ParseInt(id[i+len(idSep):], 10, 64)
	if err != nil || TaskID(job, rangeID) != id {
		return "", 0, fmt.Errorf("%w: %q", ErrNotRangeTaskID, id)
	}
	return job, rangeID, nil
}

// Task options. Retention keeps a completed task's ID for a day so a second
// start within it sees a conflict rather than a fresh task; the ledger's done
// marks cover the time after that. The timeout only bounds one run of a
// range, which resumes from its checkpoint.
const (
	taskRetention = 24 * time.Hour
	taskTimeout   = 6 * time.Hour
	taskMaxRetry  = 10
)

// TaskOptions are the asynq options of a range task with TaskID id.
func TaskOptions(queue, id string) []asynq.Option {
	return []asynq.Option{asynq.Queue(queue), asynq.TaskID(id), asynq.Retention(taskRetention),
		asynq.MaxRetry(taskMaxRetry), asynq.Timeout(taskTimeout)}
}

// EnqueueFunc puts the range task of p on queue.
type EnqueueFunc func(ctx context.Context, queue string, p Payload) error

// Enqueuer returns an EnqueueFunc that puts range tasks on client, signed
// with k when it is set. A range already queued (TaskID conflict) counts
// as enqueued. The caller owns and closes client.
func Enqueuer(client *asynq.Client, k signing.Key) EnqueueFunc {
	return func(ctx context.Context, queue string, p Payload) error {
		p, err := p.Sign(k)
		if err != nil {
			return err
		}
		task, id, err := NewTask(p)
		if err != nil {
			return err
		}
		_, err = client.EnqueueContext(ctx, task, TaskOptions(queue, id)...)
		if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			return fmt.Errorf("enqueue %s range %d: %w", p.Job, p.Range, err)
		}
		return nil
	}
}

// ErrBadQueue is a queue name ebb refuses.
var ErrBadQueue = errors.New("bad queue name")

// ValidQueue rejects queue names asynq cannot serve safely: { and } would
// break its {queue} hash tags (CROSSSLOT errors on Redis Cluster).
func ValidQueue(q string) error {
	if q == "" {
		return fmt.Errorf("%w: it must not be empty", ErrBadQueue)
	}
	if strings.ContainsAny(q, "{}") {
		return fmt.Errorf("%w %q: { and } break asynq's Redis hash tags; pick another", ErrBadQueue, q)
	}
	return nil
}

// errMissingJobOrInverted is a payload that decodes but names no range.
var errMissingJobOrInverted = errors.New("missing job, missing or inverted bounds")

// idSep separates the job from the range ID in a TaskID.
const idSep = ":r"
