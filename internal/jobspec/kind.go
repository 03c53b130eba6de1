package jobspec

import (
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Kinds of job: what a batch does to the rows of its key range that match
// pending. A fill (set: or sql:) updates them, a copy inserts them into
// another table, a delete removes them.
const (
	KindFill   = "fill"
	KindCopy   = "copy"
	KindDelete = "delete"
)

// Copy is a copy job's target: rows of the job's table that match pending
// are inserted into To, one batch at a time, and a redone batch changes
// nothing (ON CONFLICT on the target's key).
type Copy struct {
	// To is the target table in the same database, table or schema.table.
	To string `yaml:"to" json:"to"`
	// Columns maps each target column to the SQL expression over the
	// source row that fills it, e.g. {id: id, status: map_status(state)}.
	// The key columns must be carried as they are: the target is matched
	// with the source by them.
	Columns map[string]string `yaml:"columns" json:"columns"`
	// OnConflict is what an existing target row gets: nothing (keep it,
	// the default) or update (overwrite it when it differs).
	OnConflict string `yaml:"on_conflict,omitempty" json:"on_conflict,omitempty"`
	// DatabaseEnv names the environment variable holding the DSN of the
	// target's database when it is not the job's own: rows then travel
	// through the worker (COPY into a staging table, then an upsert).
	// Empty: the target is in the job's database.
	DatabaseEnv string `yaml:"database_env,omitempty" json:"database_env,omitempty"`
}

// Across reports whether the copy goes into another database.
func (c *Copy) Across() bool { return c != nil && c.DatabaseEnv != "" }

// On-conflict policies of a copy.
const (
	ConflictNothing = "nothing"
	ConflictUpdate  = "update"
)

// Kind is what the job's batches do: KindFill, KindCopy or KindDelete.
func (s *Spec) Kind() string {
	switch {
	case s.Copy != nil:
		return KindCopy
	case s.Delete:
		return KindDelete
	}
	return KindFill
}

// CopyColumns are the copy's target columns in a fixed order (sorted), with
// the source expression of each at the same index.
func (c *Copy) CopyColumns() (targets, exprs []string) {
	for t := range c.Columns {
		targets = append(targets, t)
	}
	slices.Sort(targets)
	for _, t := range targets {
		exprs = append(exprs, c.Columns[t])
	}
	return targets, exprs
}

// TargetKey is the target column that carries each of the source columns
// cols (the key, tie-breaker included), in their order; ok is false when a
// column is not carried as it is. A column carried to several target
// columns maps to the one of its own name, else the first in name order,
// so every caller (preflight, the batch's ON CONFLICT, verify) picks the
// same.
func (c *Copy) TargetKey(cols []string) (target []string, ok bool) {
	targets, exprs := c.CopyColumns()
	for _, col := range cols {
		found := ""
		for i, t := range targets {
			e := strings.TrimSpace(exprs[i])
			if e != col && e != (pgx.Identifier{col}).Sanitize() {
				continue
			}
			if found == "" || t == col {
				found = t
			}
		}
		if found == "" {
			return nil, false
		}
		target = append(target, found)
	}
	return target, true
}

// QuotedTo is the target table as a quoted SQL identifier.
func (c *Copy) QuotedTo() string {
	if schema, name, ok := strings.Cut(c.To, "."); ok {
		return pgx.Identifier{schema, name}.Sanitize()
	}
	return pgx.Identifier{c.To}.Sanitize()
}

// validateKind checks what the job's batches do: exactly one of set, sql,
// copy and delete, and the fields each kind needs or refuses.
func (s *Spec) validateKind(add addFunc) {
	var kinds []string
	for _, k := range []struct {
		field string
		on    bool
	}{{"set", s.Set != ""}, {"sql", s.SQL != ""}, {"copy", s.Copy != nil}, {"delete", s.Delete}} {
		if k.on {
			kinds = append(kinds, k.field)
		}
	}
	switch {
	case len(kinds) > 1:
		add(kinds[1], "%s are all given; keep one: set builds an UPDATE, sql is a raw statement, copy inserts into another table, delete: true removes the rows", strings.Join(kinds, " and "))
		return
	case len(kinds) == 0:
		add("set", "missing; give set (e.g. status = map_status(legacy_state)), sql (a raw statement using $1 and $2), copy (to another table) or delete: true")
		return
	}
	switch {
	case s.SQL != "":
		if err := checkPlaceholdersAtLeast(s.SQL, max(len(s.Key), 1)); err != nil {
			add("sql", "%v", err)
		}
	case s.Delete:
		if s.Check != "" {
			add("check", "a delete job's rows are gone once done: verify proves it by finding no row that matches pending; drop check")
		}
	case s.Copy != nil:
		s.validateCopy(add)
	}
}

func (s *Spec) validateCopy(add addFunc) {
	c := s.Copy
	schema, name, _ := strings.Cut(c.To, ".")
	if !strings.Contains(c.To, ".") {
		schema, name = "", c.To
	}
	switch {
	case c.To == "":
		add("copy.to", "missing; name the target table, e.g. public.orders_v2 (it must exist, with a unique key)")
	case (schema != "" && !identRE.MatchString(schema)) || !identRE.MatchString(name):
		add("copy.to", "%q is not a plain table name; write table or schema.table", c.To)
	case c.To == s.Table && c.DatabaseEnv == "":
		add("copy.to", "is the job's own table; a copy goes into another table (or, with copy.database_env, another database)")
	}
	if len(c.Columns) == 0 {
		add("copy.columns", "missing; map each target column to its value, e.g. {id: id, status: map_status(legacy_state)}")
	}
	for t, e := range c.Columns {
		if !identRE.MatchString(t) {
			add("copy.columns", "target column %q is not a plain column name", t)
		}
		if strings.TrimSpace(e) == "" {
			add("copy.columns", "target column %q has no value; give the source expression, e.g. %s: %s", t, t, t)
		}
	}
	if len(c.Columns) > 0 {
		if _, ok := c.TargetKey(s.Key); !ok {
			add("copy.columns", "the key %s must be copied as it is (e.g. %s: %s): the target is matched with the source by it", s.Key, s.Key[0], s.Key[0])
		}
	}
	switch c.OnConflict {
	case "", ConflictNothing, ConflictUpdate:
	default:
		add("copy.on_conflict", "%q is not a policy; write nothing (keep existing target rows, the default) or update (overwrite them)", c.OnConflict)
	}
	switch {
	case c.DatabaseEnv == "":
	case strings.Contains(c.DatabaseEnv, "://") || strings.Contains(c.DatabaseEnv, "@") || strings.Contains(c.DatabaseEnv, "="):
		// Never echo it: it is likely a DSN with a password in it.
		add("copy.database_env", "looks like a DSN; put the target's DSN in an environment variable on the workers and the enqueuer and write that variable's name here, e.g. TARGET_DATABASE_URL")
	case !envRE.MatchString(c.DatabaseEnv):
		add("copy.database_env", "%q is not an environment variable name; name the variable that holds the target's DSN, e.g. TARGET_DATABASE_URL", c.DatabaseEnv)
	case c.DatabaseEnv == s.DatabaseEnv:
		add("copy.database_env", "is the job's own database_env; leave it out to copy within the job's database")
	}
	if s.Check != "" {
		add("check", "a copy job is verified by comparing source and target row by row; drop check")
	}
}
