package control

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/dial"
	"github.com/ebbhq/ebb/internal/jobspec"
)

// copyTarget opens the target database of a copy into another database;
// see OpenCopyTarget.
func (c *Control) copyTarget(ctx context.Context, spec *jobspec.Spec) (*pgxpool.Pool, func(), error) {
	return OpenCopyTarget(ctx, spec, c.env)
}

// OpenCopyTarget opens the target database of a copy into another
// database, from the environment variable the job names
// (copy.database_env, read with getenv), and returns it with the function
// that closes it. Any other job has no target of its own: nil, and a close
// that does nothing.
func OpenCopyTarget(ctx context.Context, spec *jobspec.Spec, getenv func(string) string) (*pgxpool.Pool, func(), error) {
	if !spec.Copy.Across() {
		return nil, func() {}, nil
	}
	env := spec.Copy.DatabaseEnv
	pool, err := dial.PostgresDSN(ctx, env, getenv(env))
	if err != nil {
		return nil, nil, fmt.Errorf("copy target of %s: %w", spec.Name, err)
	}
	return pool, pool.Close, nil
}
