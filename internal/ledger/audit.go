package ledger

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// auditKept bounds a job's audit list: months of operator actions.
const auditKept = 1000

// AuditKey is a list of the operator actions on a job (JSON entries,
// newest first, capped at auditKept): who paused, resumed or changed a
// limit, and when. The global pause's actions go to GlobalAuditKey.
func (l *Ledger) AuditKey(job string) string {
	if job == "" {
		return l.prefix + "audit"
	}
	return l.jobKey(job, "audit")
}

// RecordAudit adds an entry to the audit list of job ("" for the global
// pause), trimming it in the same transaction.
func (l *Ledger) RecordAudit(ctx context.Context, job string, entry []byte) error {
	key := l.AuditKey(job)
	_, err := l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, key, entry)
		p.LTrim(ctx, key, 0, auditKept-1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("record operator action in %s: %w", key, err)
	}
	return nil
}

// Audit returns the newest n entries of job's audit list ("" for the
// global one), newest first.
func (l *Ledger) Audit(ctx context.Context, job string, n int64) ([][]byte, error) {
	vals, err := l.rdb.LRange(ctx, l.AuditKey(job), 0, n-1).Result()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", l.AuditKey(job), err)
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		out[i] = []byte(v)
	}
	return out, nil
}
