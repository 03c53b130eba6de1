package control

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
)

// AuditEntry is one operator action on a job, kept with the job in Redis
// and shown by status and the on-call page: who did what, when.
type AuditEntry struct {
	At     time.Time `json:"at"`
	Who    string    `json:"who"`
	Action string    `json:"action"`
	Detail string    `json:"detail,omitempty"`
}

// Audit actions.
const (
	ActionPause  = "pause"
	ActionResume = "resume"
	ActionSet    = "set"
	// ActionOverrideGuard and ActionEndOverride start and end an
	// operator's override of the guard.
	ActionOverrideGuard = "override-guard"
	ActionEndOverride   = "end-override"
)

// auditShown is how many of a job's latest actions status carries.
const auditShown = 10

// audit records an operator action. The action itself already happened:
// failing to record it is logged, not returned, so a Redis hiccup after a
// pause never reports the pause as failed.
func (c *Control) audit(ctx context.Context, job, who, action, detail string) {
	b, err := json.Marshal(AuditEntry{At: time.Now().UTC(), Who: who, Action: action, Detail: detail})
	if err == nil {
		err = c.ledger.RecordAudit(ctx, job, b)
	}
	if err != nil {
		c.log.WarnContext(ctx, "operator action not recorded in the audit list", slog.String("job", job), slog.String("action", action), slog.Any("err", err))
	}
}

// Audit returns the latest n operator actions on job ("" for the global
// pause), newest first.
func (c *Control) Audit(ctx context.Context, job string, n int64) ([]AuditEntry, error) {
	raw, err := c.ledger.Audit(ctx, job, n)
	if err != nil {
		return nil, err
	}
	out := make([]AuditEntry, 0, len(raw))
	for _, b := range raw {
		var e AuditEntry
		if err := json.Unmarshal(b, &e); err != nil {
			e = AuditEntry{Action: "unreadable", Detail: fmt.Sprintf("%q", b)}
		}
		out = append(out, e)
	}
	return out, nil
}
