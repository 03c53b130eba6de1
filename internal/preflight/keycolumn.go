package preflight

import (
	"context"
	"errors"

	"github.com/ebbhq/ebb/internal/batch"
	"github.com/ebbhq/ebb/internal/keyspace"
)

// checkKeyColumn refuses a key that is missing or of a type ebb cannot walk
// (one integer, uuid, text or varchar column), and a fixed range bound that is not a key
// of that type. It opens the key space from the catalog, so the checks
// after it and the job's statements see the key's real shape.
func checkKeyColumn(ctx context.Context, r *Resources) error {
	space, err := keyspace.Open(ctx, r.Pool, r.Spec.QuotedTable(), r.Spec.Key)
	var typeErr *keyspace.TypeError
	switch {
	case errors.Is(err, keyspace.ErrNoColumn):
		return refuse("key column %q does not exist in %s; check the key field", r.Spec.Key, r.Spec.Table)
	case errors.As(err, &typeErr):
		return refuse("key column %q of %s is %s; the key must be %s", r.Spec.Key, r.Spec.Table, typeErr.Type, keyspace.KeyTypes)
	case err != nil:
		return err
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
	r.Space, r.Stmts = space, batch.Build(r.Spec, space)
	return nil
}
