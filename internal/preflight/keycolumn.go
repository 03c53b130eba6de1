package preflight

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ebbhq/ebb/internal/batch"
	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
)

// checkKeyColumn refuses a key that is missing, of a type ebb cannot walk
// (see keyspace.KeyTypes), not unique on a table without a primary key to
// break ties, a window on a key that is not a time, a custom sql:
// statement that does not bind every column of both bounds, and a fixed
// range bound that is not a key of that shape. It opens the key space
// from the catalog, so the checks after it and the job's statements see
// the key's real shape (with its tie-breaker).
func checkKeyColumn(ctx context.Context, r *Resources) error {
	space, err := keyspace.Open(ctx, r.Pool, r.Spec.QuotedTable(), r.Spec.Key...)
	var typeErr *keyspace.TypeError
	var colErr *keyspace.ColumnError
	switch {
	case errors.As(err, &colErr):
		return refuse("key column %q does not exist in %s; check the key field", colErr.Column, r.Spec.Table)
	case errors.As(err, &typeErr):
		return refuse("key column %q of %s is %s; the key must be %s", typeErr.Column, r.Spec.Table, typeErr.Type, keyspace.KeyTypes)
	case errors.Is(err, keyspace.ErrNotUnique), errors.Is(err, keyspace.ErrShape):
		return refuse("%v", err)
	case err != nil:
		return err
	}
	if !r.Spec.Window.IsZero() && !space.CanWindow() {
		return refuse("window: %s slices a time key, and key %s of %s is %s; drop window (task_span slices by count) or key a date, timestamp or timestamptz column", r.Spec.Window, r.Spec.Key, r.Spec.Table, space.Shape())
	}
	if r.Spec.RawSQL() {
		if err := jobspec.CheckPlaceholders(r.Spec.SQL, space.Width()); err != nil {
			return refuse("sql %v; the key of %s is (%s)%s", err, r.Spec.Table, strings.Join(space.Names(), ", "), tieBreakNote(space))
		}
	}
	for _, b := range []struct {
		field string
		fixed bool
		key   keyspace.Key
	}{{"range.from", !r.Spec.Range.From.IsAuto(), r.Spec.Range.From.Key()}, {"range.to", !r.Spec.Range.To.IsAuto(), r.Spec.Range.To.Key()}} {
		if _, err := space.Args(b.key); b.fixed && err != nil {
			return refuse("%s %s is not a key of %s's %s key %q; use auto", b.field, b.key, r.Spec.Table, space.Shape(), r.Spec.Key)
		}
	}
	if space.TieBreak() > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("key %s of %s is not unique: ebb walks (%s), the primary key breaking ties", r.Spec.Key, r.Spec.Table, strings.Join(space.Names(), ", ")))
	}
	r.Space, r.Stmts = space, batch.Build(r.Spec, space)
	return nil
}

// tieBreakNote says why a key has more columns than the job file names.
func tieBreakNote(space keyspace.Space) string {
	if space.TieBreak() == 0 {
		return ""
	}
	return fmt.Sprintf(": the job's key is not unique, so ebb appends the primary key as a tie-breaker and binds %d placeholders per bound", space.Width())
}
