package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ebbhq/ebb/internal/guard"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/progress"
)

// Status is a job's progress as status prints it.
type Status struct {
	Job          string           `json:"job"`
	Queue        string           `json:"queue"`
	State        string           `json:"state"`
	DryRun       bool             `json:"dry_run,omitempty"`
	RangesTotal  int64            `json:"ranges_total"`
	RangesDone   int64            `json:"ranges_done"`
	RangesFailed int64            `json:"ranges_failed"`
	RowsDone     int64            `json:"rows_done"`
	Batches      int64            `json:"batches"`
	Retries      int64            `json:"retries"`
	PauseReason  string           `json:"pause_reason,omitempty"`
	Failures     []ledger.Failure `json:"failures,omitempty"`
	// Lost are unfinished ranges asynq holds no task for (deleted in
	// Asynqmon, or lost with Redis's data): nothing will run them until
	// enqueuer start runs again with the job file.
	Lost []int64 `json:"lost,omitempty"`
	// Audit are the latest operator actions on the job (pause, resume,
	// set), newest first: who did what, when.
	Audit []AuditEntry `json:"audit,omitempty"`
	// GuardOverride is set while an operator overrides the guard: the
	// fleet ignores its decisions until Until.
	GuardOverride *GuardOverride `json:"guard_override,omitempty"`
	// PausedSeconds is how long the job spent paused (its flag, the
	// global one, its guard); the average rate, the ETA and the rows
	// expected by now leave it out.
	PausedSeconds float64 `json:"paused_seconds,omitempty"`
	// Verify is the last verify's verdict, nil before one ran.
	Verify  *VerifySummary `json:"verify,omitempty"`
	Created time.Time      `json:"created"`
	// Finished is when the last range was done; the average rate and pace
	// stop there instead of decaying while the finished job sits in Redis.
	Finished *time.Time `json:"finished,omitempty"`
	// EstimatedRows, Progress, ProgressBasis, AvgRowsPerSec and ETASeconds
	// are progress.Figures (see there), the numbers the workers export too.
	EstimatedRows int64   `json:"estimated_rows"`
	Progress      float64 `json:"progress"`
	ProgressBasis string  `json:"progress_basis"`
	AvgRowsPerSec float64 `json:"avg_rows_per_sec"`
	// RowsPerSecNow is the fleet's rate over the guard's last check, as
	// its leader measured it; absent without a fresh guard decision.
	RowsPerSecNow *float64 `json:"rows_per_sec_now,omitempty"`
	ETASeconds    float64  `json:"eta_seconds"`
	// ExpectedRows is what the job's rate would have written by now (0
	// without a rate): compare with RowsDone to see whether it keeps pace.
	ExpectedRows int64 `json:"expected_rows,omitempty"`
	// Rate and MaxWorkers are the limits in force: the job file's, or a
	// live override.
	Rate       float64           `json:"rate"`
	MaxWorkers int               `json:"max_workers"`
	Overrides  map[string]string `json:"overrides,omitempty"`
	Guard      *GuardStatus      `json:"guard,omitempty"`
	// Auto is set for a rate: auto job the operator has not overridden:
	// Rate is then the rate its controller set at the last check.
	Auto *AutoStatus `json:"auto,omitempty"`
}

// AutoStatus is rate: auto as status shows it.
type AutoStatus struct {
	Objective jobspec.Objective `json:"objective"`
	RateMax   float64           `json:"rate_max,omitempty"`
	// Rate is the controller's rate, Why its last step; Ceiling the rate
	// that was too much at its last cut (0: none yet).
	Rate    float64 `json:"rate"`
	Ceiling float64 `json:"ceiling,omitempty"`
	Why     string  `json:"why,omitempty"`
}

// Job states.
const (
	StateQueued  = "queued"
	StateRunning = "running"
	StatePaused  = "paused"
	StateDone    = "done"
	StateFailed  = "failed"
	// StateLost is a job whose every unfinished range has no task left
	// in asynq: it cannot finish by itself.
	StateLost = "lost"
)

// Progress bases, the values of Status.ProgressBasis.
const (
	BasisRows   = progress.BasisRows
	BasisRanges = progress.BasisRanges
)

// GuardStatus is the guard's view of a job in status.
type GuardStatus struct {
	State   string             `json:"state"`
	Stale   bool               `json:"stale,omitempty"`
	Leader  string             `json:"leader,omitempty"`
	At      time.Time          `json:"at,omitzero"`
	Expires time.Time          `json:"expires,omitzero"`
	Factor  float64            `json:"rate_factor"`
	Window  string             `json:"window,omitempty"`
	Reasons []string           `json:"reasons,omitempty"`
	Signals []guard.SignalView `json:"signals,omitempty"`
	// Baseline holds each relative rule's level before the job started.
	Baseline map[string]float64 `json:"baseline,omitempty"`
	// rowsPerSec is the fresh decision's measured fleet rate.
	rowsPerSec *float64
}

// Status reads a job's state and progress: it gathers a snapshot, then
// derives the status from it (deriveStatus), so every rule of the
// derivation is table-tested without Redis.
func (c *Control) Status(ctx context.Context, job string) (*Status, error) {
	snap, err := c.readStatus(ctx, job)
	if err != nil {
		return nil, err
	}
	return deriveStatus(snap, time.Now()), nil
}

// statusSnapshot is everything status reads about a job, gathered before
// anything is derived from it.
type statusSnapshot struct {
	job    string
	ledger ledger.Snapshot
	// spec is nil when it is missing or unreadable: status still shows
	// the progress.
	spec *jobspec.Spec
	// redisNow is Redis's clock: the guard decision's freshness is judged
	// on it, as the workers judge it.
	redisNow time.Time
	// overrides may be partly read when overridesErr is set.
	overrides    ledger.Overrides
	overridesErr error
	// decision is the raw guard decision, nil when none was published;
	// decision and baseline are read only for a job the guard watches.
	decision []byte
	baseline map[string]float64
	// globalPauseKey and jobPauseKey name the flags in a pause reason.
	globalPauseKey, jobPauseKey string
	// queue is what asynq holds of the unfinished ranges (reconcile).
	queue queueView
	// audit are the latest operator actions.
	audit []AuditEntry
	// guardOverride is the operator's override of the guard, if any.
	guardOverride *GuardOverride
	// paused are the job's pause spans; verify its last verify's verdict.
	paused []span
	verify *VerifySummary
}

// VerifySummary is the last verify of a job as status shows it.
type VerifySummary struct {
	At       time.Time `json:"at"`
	OK       bool      `json:"ok"`
	Sample   bool      `json:"sample,omitempty"`
	Problems []string  `json:"problems,omitempty"`
}

// readStatus gathers the snapshot status derives from: the ledger snapshot
// in one round trip, then the spec, Redis's clock, the overrides and, for a
// guarded job, the decision and the baseline.
func (c *Control) readStatus(ctx context.Context, job string) (statusSnapshot, error) {
	snap := statusSnapshot{job: job, globalPauseKey: c.ledger.GlobalPauseKey(), jobPauseKey: c.ledger.PauseKey(job)}
	var err error
	snap.ledger, err = c.ledger.Snapshot(ctx, job)
	if errors.Is(err, ledger.ErrNotFound) {
		return snap, fmt.Errorf("%w %q: no ledger under %s; list jobs with enqueuer status, or start it with enqueuer start -job FILE", ErrUnknownJob, job, c.ledger.MetaKey(job))
	}
	if err != nil {
		return snap, err
	}
	if raw, err := c.ledger.Spec(ctx, job); err == nil {
		snap.spec, _ = jobspec.FromJSON(raw)
	}
	if snap.redisNow, err = c.ledger.Now(ctx); err != nil {
		return snap, err
	}
	if snap.queue, err = c.reconcile(ctx, job, snap.ledger, snap.redisNow); err != nil {
		return snap, err
	}
	if snap.audit, err = c.Audit(ctx, job, auditShown); err != nil {
		return snap, err
	}
	if snap.guardOverride, err = c.guardOverride(ctx, job); err != nil {
		return snap, err
	}
	if snap.paused, err = c.pausedSpans(ctx, job); err != nil {
		return snap, err
	}
	if snap.verify, err = c.lastVerify(ctx, job); err != nil {
		return snap, err
	}
	snap.overrides, snap.overridesErr = c.ledger.Overrides(ctx, job)
	if snap.spec == nil || !guard.Watched(snap.spec) {
		return snap, nil
	}
	if snap.decision, err = c.ledger.Decision(ctx, job); err != nil {
		return snap, err
	}
	if snap.baseline, err = c.ledger.Baseline(ctx, job); err != nil {
		return snap, err
	}
	return snap, nil
}

// lastVerify is the verdict of the verify report stored with job.
func (c *Control) lastVerify(ctx context.Context, job string) (*VerifySummary, error) {
	raw, err := c.ledger.LastVerify(ctx, job)
	if err != nil || raw == nil {
		return nil, err
	}
	var r VerifyReport
	if err := json.Unmarshal(raw, &r); err != nil {
		return &VerifySummary{Problems: []string{"the stored verify report is unreadable: run enqueuer verify again"}}, nil
	}
	return &VerifySummary{At: r.At, OK: r.OK, Sample: r.Sample, Problems: r.Problems}, nil
}
