package control

import (
	"context"
	"encoding/json"
	"sort"
	"time"

	"github.com/ebbhq/ebb/internal/guard"
)

// The time a job spent paused: by its own flag or the global one (the
// audit lists' pause and resume entries) and by its guard (the guard
// history's spans in state pause). The average rate, the ETA and the rows
// the rate allows by now count only the rest: an hour paused at 2 a.m.
// is not an hour the job was slow, and must not stretch its ETA.

// span is one paused interval; an open one ends at the time asked about.
type span struct{ from, to time.Time }

// pausedSpans reads the pause intervals of job from its audit lists and
// guard history.
func (c *Control) pausedSpans(ctx context.Context, job string) ([]span, error) {
	var spans []span
	for _, list := range []string{job, ""} {
		entries, err := c.Audit(ctx, list, 1000)
		if err != nil {
			return nil, err
		}
		spans = append(spans, auditSpans(entries)...)
	}
	raw, err := c.ledger.History(ctx, job, 1000)
	if err != nil {
		return nil, err
	}
	changes := make([]guard.Change, 0, len(raw))
	for _, b := range raw {
		var ch guard.Change
		if json.Unmarshal(b, &ch) == nil {
			changes = append(changes, ch)
		}
	}
	return append(spans, guardSpans(changes)...), nil
}

// auditSpans turns pause and resume entries (newest first) into spans.
func auditSpans(entries []AuditEntry) []span {
	var spans []span
	var open *time.Time
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		switch e.Action {
		case ActionPause:
			if open == nil {
				at := e.At
				open = &at
			}
		case ActionResume, ActionOverrideGuard:
			if open != nil {
				spans = append(spans, span{*open, e.At})
				open = nil
			}
		}
	}
	if open != nil {
		spans = append(spans, span{from: *open})
	}
	return spans
}

// guardSpans turns the guard's changes (newest first) into its pause spans.
func guardSpans(changes []guard.Change) []span {
	var spans []span
	var open *time.Time
	for i := len(changes) - 1; i >= 0; i-- {
		ch := changes[i]
		switch {
		case ch.State == guard.StatePause && open == nil:
			at := ch.At
			open = &at
		case ch.State != guard.StatePause && open != nil:
			spans = append(spans, span{*open, ch.At})
			open = nil
		}
	}
	if open != nil {
		spans = append(spans, span{from: *open})
	}
	return spans
}

// pausedWithin sums the union of spans inside [from, to]; an open span
// runs to to.
func pausedWithin(spans []span, from, to time.Time) time.Duration {
	clipped := make([]span, 0, len(spans))
	for _, s := range spans {
		if s.to.IsZero() || s.to.After(to) {
			s.to = to
		}
		if s.from.Before(from) {
			s.from = from
		}
		if s.to.After(s.from) {
			clipped = append(clipped, s)
		}
	}
	sort.Slice(clipped, func(i, j int) bool { return clipped[i].from.Before(clipped[j].from) })
	var total time.Duration
	var cur span
	for i, s := range clipped {
		switch {
		case i == 0:
			cur = s
		case !s.from.After(cur.to):
			if s.to.After(cur.to) {
				cur.to = s.to
			}
		default:
			total += cur.to.Sub(cur.from)
			cur = s
		}
	}
	if len(clipped) > 0 {
		total += cur.to.Sub(cur.from)
	}
	return total
}
