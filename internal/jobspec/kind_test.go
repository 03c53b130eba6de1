package jobspec_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/jobspec"
)

// TestKinds: what a job's batches do is read from the job file, survives
// storage in Redis, and brings its defaults: a delete watches the dead
// tuples it leaves behind, a copy keeps existing target rows.
func TestKinds(t *testing.T) {
	t.Parallel()
	fill, err := jobspec.Parse([]byte(valid))
	require.NoError(t, err)
	require.Equal(t, jobspec.KindFill, fill.Kind())
	require.NotContains(t, fill.Guard.Rules, jobspec.DeadTuplesRule())

	del, err := jobspec.Parse([]byte(replace(valid, "set:", "delete: true")))
	require.NoError(t, err)
	require.Equal(t, jobspec.KindDelete, del.Kind())
	require.Equal(t, jobspec.DeadTuplesRule(), del.Guard.Rules[len(del.Guard.Rules)-1], "a delete watches dead tuples by default")

	cp, err := jobspec.Parse([]byte(replace(valid, "set:", "copy: {to: orders_v2, columns: {id: id, state: upper(status)}}")))
	require.NoError(t, err)
	require.Equal(t, jobspec.KindCopy, cp.Kind())
	require.Equal(t, jobspec.ConflictNothing, cp.Copy.OnConflict)
	targets, exprs := cp.Copy.CopyColumns()
	require.Equal(t, []string{"id", "state"}, targets)
	require.Equal(t, []string{"id", "upper(status)"}, exprs)
	key, ok := cp.Copy.TargetKey([]string{"id"})
	require.True(t, ok)
	require.Equal(t, []string{"id"}, key)
	require.Equal(t, `"orders_v2"`, cp.Copy.QuotedTo())
	twice := jobspec.Copy{Columns: map[string]string{"legacy_id": "id", "a_id": "id", "id": "id"}}
	for range 20 {
		key, _ := twice.TargetKey([]string{"id"})
		require.Equal(t, []string{"id"}, key, "the key's own name wins, every time")
	}
	twice = jobspec.Copy{Columns: map[string]string{"legacy_id": "id", "a_id": "id"}}
	for range 20 {
		key, _ := twice.TargetKey([]string{"id"})
		require.Equal(t, []string{"a_id"}, key, "else the first in name order, every time")
	}

	b, err := cp.JSON()
	require.NoError(t, err)
	back, err := jobspec.FromJSON(b)
	require.NoError(t, err)
	require.Equal(t, cp.Copy, back.Copy)
}
