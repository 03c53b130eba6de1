package jobspec_test

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/keyspace"
)

// valid is a complete job file; the cases below edit it line by line so each
// one breaks exactly one thing and the expected line numbers are easy to read.
const valid = `name: orders-status
table: public.orders
key: id
pending: status IS NULL
set: status = 'done'
`

// fieldErrors flattens the errors.Join tree Parse returns into its *Error
// leaves.
func fieldErrors(err error) []*jobspec.Error {
	var out []*jobspec.Error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if fe, ok := err.(*jobspec.Error); ok {
			out = append(out, fe)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		walk(errors.Unwrap(err))
	}
	walk(err)
	return out
}

// without drops the line that starts with prefix.
func without(yaml, prefix string) string {
	var keep []string
	for _, l := range strings.SplitAfter(yaml, "\n") {
		if !strings.HasPrefix(l, prefix) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "")
}

// replace swaps the line that starts with prefix for repl.
func replace(yaml, prefix, repl string) string {
	var out []string
	for _, l := range strings.SplitAfter(yaml, "\n") {
		if strings.HasPrefix(l, prefix) {
			l = repl + "\n"
		}
		out = append(out, l)
	}
	return strings.Join(out, "")
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		yaml  string
		field string
		// line is where the field is written; 0 when it is absent.
		line int
		// hint is the part of the message that tells the operator what to do.
		hint string
	}{
		{
			name:  "unknown field (typo)",
			yaml:  replace(valid, "pending:", "pendng: status IS NULL"),
			field: "pendng", line: 4,
			hint: "check the spelling",
		},
		{
			name:  "unknown nested field",
			yaml:  valid + "timeouts:\n  lok: 1s\n",
			field: "lok", line: 7,
			hint: "check the spelling",
		},
		{
			name:  "key column named twice",
			yaml:  replace(valid, "key:", "key: [id, id]"),
			field: "key", line: 3,
			hint: `column "id" is named twice`,
		},
		{
			name:  "key column that is not a name",
			yaml:  replace(valid, "key:", "key: [tenant_id, \"id; drop\"]"),
			field: "key", line: 3,
			hint: "is not a plain column name",
		},
		{
			name:  "bad window",
			yaml:  valid + "window: 90 minutes\n",
			field: "window", line: 6,
			hint: "write a count and a unit: 30s, 15m, 1h, 1d, 1w or 1mo",
		},
		{
			name:  "composite sql without the upper key's second column",
			yaml:  replace(replace(valid, "key:", "key: [tenant_id, id]"), "set:", "sql: UPDATE t SET x = 1 WHERE (tenant_id, id) >= ($1, $2) AND (tenant_id, id) <= ($3, 0)"),
			field: "sql", line: 5,
			hint: "must use all of $1..$4",
		},
		{
			name:  "missing name",
			yaml:  without(valid, "name:"),
			field: "name",
			hint:  "give the job a name",
		},
		{
			name:  "missing table",
			yaml:  without(valid, "table:"),
			field: "table",
			hint:  "name the table to backfill",
		},
		{
			name:  "missing key",
			yaml:  without(valid, "key:"),
			field: "key",
			hint:  "name the key column (with a btree index)",
		},
		{
			name:  "missing pending",
			yaml:  without(valid, "pending:"),
			field: "pending",
			hint:  "give the predicate of rows still to do",
		},
		{
			name:  "blank pending",
			yaml:  replace(valid, "pending:", "pending: '  '"),
			field: "pending", line: 4,
			hint: "give the predicate of rows still to do",
		},
		{
			name:  "neither set nor sql",
			yaml:  without(valid, "set:"),
			field: "set",
			hint:  "give set",
		},
		{
			name:  "set and sql both",
			yaml:  valid + "sql: UPDATE public.orders SET status = 'done' WHERE id BETWEEN $1 AND $2\n",
			field: "sql", line: 6,
			hint: "keep one",
		},
		{
			name:  "set and delete both",
			yaml:  valid + "delete: true\n",
			field: "delete", line: 6,
			hint: "keep one",
		},
		{
			name:  "delete with a check",
			yaml:  replace(valid, "set:", "delete: true") + "check: status = 'x'\n",
			field: "check", line: 6,
			hint: "verify proves it by finding no row that matches pending",
		},
		{
			name:  "copy without a target",
			yaml:  replace(valid, "set:", "copy: {columns: {id: id}}"),
			field: "copy.to",
			hint:  "name the target table",
		},
		{
			name:  "copy into its own table",
			yaml:  replace(valid, "set:", "copy: {to: public.orders, columns: {id: id}}"),
			field: "copy.to", line: 5,
			hint: "a copy goes into another table",
		},
		{
			name:  "copy that drops the key",
			yaml:  replace(valid, "set:", "copy: {to: orders_v2, columns: {status: status}}"),
			field: "copy.columns", line: 5,
			hint: "must be copied as it is (e.g. id: id)",
		},
		{
			name:  "copy with an unknown conflict policy",
			yaml:  replace(valid, "set:", "copy: {to: orders_v2, columns: {id: id}, on_conflict: replace}"),
			field: "copy.on_conflict", line: 5,
			hint: "write nothing (keep existing target rows, the default) or update",
		},
		{
			name:  "sql without $1",
			yaml:  replace(valid, "set:", "sql: UPDATE public.orders SET status = 'done' WHERE id <= $2 AND status IS NULL"),
			field: "sql", line: 5,
			hint: "must use both $1 and $2",
		},
		{
			name:  "sql without $2",
			yaml:  replace(valid, "set:", "sql: UPDATE public.orders SET status = 'done' WHERE id >= $1 AND status IS NULL"),
			field: "sql", line: 5,
			hint: "must use both $1 and $2",
		},
		{
			name:  "sql with $10 but no $1",
			yaml:  replace(valid, "set:", "sql: UPDATE public.orders SET status = 'done' WHERE id BETWEEN $10 AND $2"),
			field: "sql", line: 5,
			hint: "must use both $1 and $2",
		},
		{
			name:  "sql with $3",
			yaml:  replace(valid, "set:", "sql: UPDATE public.orders SET n = $3 WHERE id BETWEEN $1 AND $2"),
			field: "sql", line: 5,
			hint: "uses $3, above $2: a key of 1 column(s) binds $1..$2",
		},
		{
			name:  "bad name",
			yaml:  replace(valid, "name:", "name: Orders_Status"),
			field: "name", line: 1,
			hint: "use 1-63 lowercase letters, digits and dashes",
		},
		{
			name:  "bad table",
			yaml:  replace(valid, "table:", "table: public.orders; DROP TABLE x"),
			field: "table", line: 2,
			hint: "write table or schema.table",
		},
		{
			name:  "bad duration",
			yaml:  valid + "sleep: 5 seconds\n",
			field: "sleep", line: 6,
			hint: "write it like 100ms, 5s or 1m",
		},
		{
			name:  "bad nested duration",
			yaml:  valid + "timeouts:\n  lock: soon\n",
			field: "timeouts.lock", line: 7,
			hint: "write it like 100ms, 5s or 1m",
		},
		{
			name:  "from above to",
			yaml:  valid + "range:\n  from: 10\n  to: 1\n",
			field: "range", line: 6,
			hint: "swap them or use auto",
		},
		{
			name:  "bound not a number",
			yaml:  valid + "range:\n  from: first\n",
			field: "range.from", line: 7,
			hint: "write auto or an integer",
		},
		{
			name:  "bound beyond int64",
			yaml:  valid + "range:\n  to: 9223372036854775808\n",
			field: "range.to", line: 7,
			hint: "write auto or an integer",
		},
		{
			name:  "batch above read_batch",
			yaml:  valid + "read_batch: 100\nbatch: 200\n",
			field: "batch", line: 7,
			hint: "lower batch (or its max) or raise read_batch",
		},
		{
			name:  "batch zero",
			yaml:  valid + "batch: 0\n",
			field: "batch", line: 6,
			hint: "must be at least 1",
		},
		{
			name:  "database_env holds a DSN",
			yaml:  valid + "database_env: postgres://app:s3cret@db:5432/shop\n",
			field: "database_env", line: 6,
			hint: "looks like a DSN; put the DSN in an environment variable",
		},
		{
			name:  "empty file",
			yaml:  "",
			field: "name",
			hint:  "see README for a complete example",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec, err := jobspec.Parse([]byte(tc.yaml))
			require.Error(t, err)
			require.Nil(t, spec)

			errs := fieldErrors(err)
			require.Len(t, errs, 1, "one broken thing, one error: %v", err)
			fe := errs[0]
			require.Equal(t, tc.field, fe.Field)
			require.Equal(t, tc.line, fe.Line)

			msg := err.Error()
			require.Contains(t, msg, `field "`+tc.field+`"`)
			if tc.line > 0 {
				require.Contains(t, msg, "line "+strconv.Itoa(tc.line)+":")
			} else {
				require.NotContains(t, msg, "line ")
			}
			require.Contains(t, msg, tc.hint)
			require.NotContains(t, msg, "s3cret", "a password pasted into the job file is never echoed")
		})
	}
}

// TestParseReportsEveryProblem: an operator fixing a job file sees all its
// problems at once, not one per run.
func TestParseReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := jobspec.Parse([]byte("name: BAD\nkey: id\nbatch: 0\n"))
	require.Error(t, err)
	var fields []string
	for _, fe := range fieldErrors(err) {
		fields = append(fields, fe.Field)
	}
	require.ElementsMatch(t, []string{"name", "table", "pending", "set", "batch"}, fields)
}

func TestParseNotYAML(t *testing.T) {
	t.Parallel()
	_, err := jobspec.Parse([]byte("name: x\ntable: orders\n  key: id\n"))
	var fe *jobspec.Error
	require.ErrorAs(t, err, &fe, "bad input like any other problem of the file")
	require.Equal(t, 3, fe.Line)
	require.ErrorContains(t, err, "job file line 3: not valid YAML")
}

func TestParseDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		extra string
		check func(t *testing.T, s *jobspec.Spec)
	}{
		{
			name: "absent fields get defaults",
			check: func(t *testing.T, s *jobspec.Spec) {
				require.Equal(t, int64(jobspec.DefaultTaskSpan), s.TaskSpan)
				require.Equal(t, jobspec.DefaultReadBatch, s.ReadBatch)
				require.Equal(t, jobspec.BatchSize{Size: jobspec.DefaultBatch, Min: jobspec.DefaultBatch, Max: jobspec.DefaultBatch}, s.Batch)
				require.False(t, s.Batch.Adaptive())
				require.Equal(t, jobspec.DefaultSleep, s.Sleep.D())
				require.Equal(t, jobspec.DefaultLockTimeout, s.Timeouts.Lock.D())
				require.Equal(t, jobspec.DefaultStmtTimeout, s.Timeouts.Statement.D())
				require.Equal(t, jobspec.DefaultRetries, s.Retries)
				require.Equal(t, jobspec.DefaultDatabaseEnv, s.DatabaseEnv)
				require.True(t, s.Range.From.IsAuto())
				require.True(t, s.Range.To.IsAuto())
			},
		},
		{
			name:  "sleep written as 0s stays 0",
			extra: "sleep: 0s\n",
			check: func(t *testing.T, s *jobspec.Spec) {
				require.Equal(t, time.Duration(0), s.Sleep.D())
			},
		},
		{
			name:  "lock timeout written as 0s stays 0, statement gets its default",
			extra: "timeouts:\n  lock: 0s\n",
			check: func(t *testing.T, s *jobspec.Spec) {
				require.Equal(t, time.Duration(0), s.Timeouts.Lock.D())
				require.Equal(t, jobspec.DefaultStmtTimeout, s.Timeouts.Statement.D())
			},
		},
		{
			name:  "flow-style timeouts",
			extra: "timeouts: {statement: 2s}\n",
			check: func(t *testing.T, s *jobspec.Spec) {
				require.Equal(t, jobspec.DefaultLockTimeout, s.Timeouts.Lock.D())
				require.Equal(t, 2*time.Second, s.Timeouts.Statement.D())
			},
		},
		{
			name:  "fixed and auto bounds",
			extra: "range:\n  from: -5\n",
			check: func(t *testing.T, s *jobspec.Spec) {
				require.False(t, s.Range.From.IsAuto())
				require.Equal(t, keyspace.Int(-5), s.Range.From.Key())
				require.True(t, s.Range.To.IsAuto())
			},
		},
		{
			name:  "written values win",
			extra: "task_span: 7\nread_batch: 50\nbatch: 50\nretries: 1\ndatabase_env: SHOP_DB\n",
			check: func(t *testing.T, s *jobspec.Spec) {
				require.Equal(t, int64(7), s.TaskSpan)
				require.Equal(t, 50, s.ReadBatch)
				require.Equal(t, jobspec.BatchSize{Size: 50, Min: 50, Max: 50}, s.Batch)
				require.Equal(t, 1, s.Retries)
				require.Equal(t, "SHOP_DB", s.DatabaseEnv)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := jobspec.Parse([]byte(valid + tc.extra))
			require.NoError(t, err)
			require.Equal(t, "orders-status", s.Name)
			require.Equal(t, "public.orders", s.Table)
			tc.check(t, s)
		})
	}
}

func TestJSONRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
	}{
		{"defaults", valid},
		{"int64 extremes", valid + "range:\n  from: -9223372036854775808\n  to: 9223372036854775807\n"},
		{"composite key and a window", replace(valid, "key:", "key: [created_at, id]") + "window: 1d\n"},
		{"composite raw sql", `name: lines
table: shop.lines
key: [tenant_id, order_id]
pending: total IS NULL
sql: UPDATE shop.lines SET total = 1 WHERE (tenant_id, order_id) >= ($1, $2) AND (tenant_id, order_id) <= ($3, $4) AND total IS NULL
`},
		{"raw sql and every field", `name: orders-backfill-2
table: shop.orders
key: order_id
pending: total IS NULL
sql: UPDATE shop.orders SET total = price * qty WHERE order_id BETWEEN $1 AND $2 AND total IS NULL
range: {from: 0, to: auto}
task_span: 1
read_batch: 10
batch: 3
sleep: 0s
timeouts: {lock: 100ms, statement: 1m30s}
retries: 9
database_env: SHOP_DSN
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want, err := jobspec.Parse([]byte(tc.yaml))
			require.NoError(t, err)
			raw, err := want.JSON()
			require.NoError(t, err)
			got, err := jobspec.FromJSON(raw)
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}

	t.Run("one key column is stored as a string, as before composite keys", func(t *testing.T) {
		t.Parallel()
		s, err := jobspec.Parse([]byte(valid))
		require.NoError(t, err)
		raw, err := s.JSON()
		require.NoError(t, err)
		require.Contains(t, string(raw), `"key":"id"`)
		require.NotContains(t, string(raw), `"window"`)
		two, err := jobspec.Parse([]byte(replace(valid, "key:", "key: [tenant_id, id]") + "window: 15m\n"))
		require.NoError(t, err)
		raw, err = two.JSON()
		require.NoError(t, err)
		require.Contains(t, string(raw), `"key":["tenant_id","id"]`)
		require.Contains(t, string(raw), `"window":"15m"`)
		require.Equal(t, "[tenant_id, id]", two.Key.String())
	})

	t.Run("extremes are strings, safe from float64 readers", func(t *testing.T) {
		t.Parallel()
		s, err := jobspec.Parse([]byte(valid + "range: {from: -9223372036854775808, to: 9223372036854775807}\n"))
		require.NoError(t, err)
		raw, err := s.JSON()
		require.NoError(t, err)
		require.Contains(t, string(raw), `"from":"-9223372036854775808"`)
		require.Contains(t, string(raw), `"to":"9223372036854775807"`)
		got, err := jobspec.FromJSON(raw)
		require.NoError(t, err)
		require.Equal(t, keyspace.Int(math.MinInt64), got.Range.From.Key())
		require.Equal(t, keyspace.Int(math.MaxInt64), got.Range.To.Key())
	})
}

// TestFromJSONRejects: a spec edited by hand in Redis is validated again, so
// it cannot smuggle in what Parse would have refused.
func TestFromJSONRejects(t *testing.T) {
	t.Parallel()
	s, err := jobspec.Parse([]byte(valid))
	require.NoError(t, err)
	good, err := s.JSON()
	require.NoError(t, err)

	tests := []struct {
		name string
		edit func(string) string
		want string
	}{
		{"not JSON", func(string) string { return "{" }, "not valid JSON"},
		{"unknown field", func(j string) string { return strings.Replace(j, `"name"`, `"nmae"`, 1) }, "unknown field"},
		{"batch zero", func(j string) string { return strings.Replace(j, `"batch":{"size":500,`, `"batch":{"size":0,`, 1) }, `field "batch"`},
		{"bad name", func(j string) string { return strings.Replace(j, `"orders-status"`, `"Orders"`, 1) }, `field "name"`},
		{"bad duration", func(j string) string { return strings.Replace(j, `"sleep":"100ms"`, `"sleep":"soon"`, 1) }, "soon"},
		{"bad bound", func(j string) string { return strings.Replace(j, `"from":"auto"`, `"from":"1e3"`, 1) }, "write auto or an integer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			edited := tc.edit(string(good))
			require.NotEqual(t, string(good), edited, "the edit must change the JSON")
			_, err := jobspec.FromJSON([]byte(edited))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// FuzzParse checks that no input makes Parse panic, that every failure is an
// error with a message, and that every accepted spec survives the JSON trip
// the enqueuer makes through Redis.
func FuzzParse(f *testing.F) {
	f.Add([]byte(valid))
	f.Add([]byte(""))
	f.Add([]byte("~"))
	f.Add([]byte("# only a comment\n"))
	f.Add([]byte("just a string"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("name: [\n"))
	f.Add([]byte("---\nname: a\n---\nname: b\n"))
	f.Add([]byte(valid + "range: {from: -9223372036854775808, to: 9223372036854775807}\n"))
	f.Add([]byte(valid + "range: {from: 9223372036854775808}\n"))
	f.Add([]byte(valid + "range: {from: {a: 1}, to: [1]}\n"))
	f.Add([]byte(valid + "range: 5\n"))
	f.Add([]byte(valid + "timeouts: 5\n"))
	f.Add([]byte(valid + "timeouts: {lock: [1]}\n"))
	f.Add([]byte(valid + "sleep: -1s\n"))
	f.Add([]byte(valid + "sleep: 9999999999h\n"))
	f.Add([]byte(valid + "sql: $1 $2 $10\n"))
	f.Add([]byte(valid + "a: &x 1\nb: *x\n"))
	f.Add([]byte(valid + "<<: {batch: 1}\n"))
	f.Add([]byte(valid + "name: dup\n"))
	f.Add([]byte("{name: a, table: t, key: k, pending: p, set: s, batch: 1e9}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := jobspec.Parse(data)
		if err != nil {
			if spec != nil {
				t.Fatalf("Parse returned both a spec and an error: %v", err)
			}
			if err.Error() == "" {
				t.Fatal("Parse returned an error with no message")
			}
			return
		}
		raw, err := spec.JSON()
		if err != nil {
			t.Fatalf("JSON of an accepted spec: %v", err)
		}
		back, err := jobspec.FromJSON(raw)
		if err != nil {
			t.Fatalf("FromJSON refused what Parse accepted: %v\n%s", err, raw)
		}
		require.Equal(t, spec, back)
	})
}

func TestQuotedTable(t *testing.T) {
	t.Parallel()
	tests := []struct{ table, want string }{
		{"orders", `"orders"`},
		{"public.orders", `"public"."orders"`},
		{`app."Order Lines"`, `"app"."""Order Lines"""`},
	}
	for _, tc := range tests {
		t.Run(tc.table, func(t *testing.T) {
			t.Parallel()
			s := &jobspec.Spec{Table: tc.table, Key: jobspec.KeyColumns{`Id"x`}}
			require.Equal(t, tc.want, s.QuotedTable())
			require.Equal(t, `"Id""x"`, s.QuotedKey())
		})
	}
}
