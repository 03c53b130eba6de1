// Package jobspec owns the job file: decoding YAML (unknown fields rejected),
// defaults, and validation. Every error names the field, the line and what to
// do. It is pure: it talks to no database and no Redis, so callers decide
// whether a table or index exists (see internal/preflight).
package jobspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.yaml.in/yaml/v3"
)

// Spec is one backfill job as the operator wrote it, with defaults applied.
// It is stored in Redis as JSON so every worker runs the same job; it never
// holds a secret, only the name of the environment variable with the DSN.
type Spec struct {
	Name  string     `yaml:"name" json:"name"`
	Table string     `yaml:"table" json:"table"`
	Key   KeyColumns `yaml:"key" json:"key"`
	// Window slices a time key into calendar windows (1h, 1d, …) instead
	// of equal-count ranges; zero slices by count.
	Window  KeyWindow `yaml:"window,omitempty" json:"window,omitzero"`
	Pending string    `yaml:"pending" json:"pending"`
	Set     string    `yaml:"set,omitempty" json:"set,omitempty"`
	SQL     string    `yaml:"sql,omitempty" json:"sql,omitempty"`
	// Copy makes the job a copy into another table; Delete a chunked
	// delete of the rows that match pending. Neither: a fill (set, sql).
	Copy     *Copy `yaml:"copy,omitempty" json:"copy,omitempty"`
	Delete   bool  `yaml:"delete,omitempty" json:"delete,omitempty"`
	Range    Range `yaml:"range" json:"range"`
	TaskSpan int64 `yaml:"task_span" json:"task_span"`
	// MaxRanges caps the range tasks one job may enqueue: a typo in
	// range.to must not fill Redis with tasks.
	MaxRanges   int64     `yaml:"max_ranges" json:"max_ranges,omitempty"`
	ReadBatch   int       `yaml:"read_batch" json:"read_batch"`
	Batch       BatchSize `yaml:"batch" json:"batch"`
	Sleep       Duration  `yaml:"sleep" json:"sleep"`
	Timeouts    Timeouts  `yaml:"timeouts" json:"timeouts"`
	Retries     int       `yaml:"retries" json:"retries"`
	DatabaseEnv string    `yaml:"database_env" json:"database_env"`
	// Rate is rows per second for the whole fleet; 0 is unlimited. The job
	// file's rate: auto leaves it 0 and sets AutoRate.
	Rate float64 `yaml:"-" json:"rate"`
	// AutoRate lets the guard leader steer the fleet's rate toward
	// Objective, from RateStart, never above RateMax (0: no cap).
	AutoRate  bool       `yaml:"-" json:"auto_rate,omitempty"`
	Objective *Objective `yaml:"objective,omitempty" json:"objective,omitempty"`
	RateMax   float64    `yaml:"rate_max,omitempty" json:"rate_max,omitempty"`
	RateStart float64    `yaml:"rate_start,omitempty" json:"rate_start,omitempty"`
	// MaxWorkers caps batches in flight across the fleet; 0 is unlimited.
	MaxWorkers int       `yaml:"max_workers" json:"max_workers"`
	Guard      Guard     `yaml:"guard" json:"guard"`
	Schedule   *Schedule `yaml:"schedule,omitempty" json:"schedule,omitempty"`
	// DryRun rolls every batch back: reads, locks, timings and the guard
	// run for real and no row changes.
	DryRun bool `yaml:"dry_run,omitempty" json:"dry_run,omitempty"`
	// Check is a boolean SQL expression every finished row must satisfy,
	// e.g. status = map_status(legacy_state); enqueuer verify samples it.
	Check string `yaml:"check,omitempty" json:"check,omitempty"`
	// Rollback is how to undo the job (free text or SQL), shown in the
	// runbook and never run.
	Rollback string `yaml:"rollback,omitempty" json:"rollback,omitempty"`
}

// Range bounds the key space of the job; both ends are inclusive.
type Range struct {
	From Bound `yaml:"from" json:"from"`
	To   Bound `yaml:"to" json:"to"`
}

// Timeouts are applied with SET LOCAL in every write transaction.
type Timeouts struct {
	Lock      Duration `yaml:"lock" json:"lock"`
	Statement Duration `yaml:"statement" json:"statement"`
}

// Defaults follow the field guide: small reads, smaller writes, a short sleep,
// and timeouts that keep any one batch from holding locks for long.
const (
	DefaultTaskSpan    = 100_000
	DefaultReadBatch   = 5_000
	DefaultBatch       = 500
	DefaultSleep       = 100 * time.Millisecond
	DefaultLockTimeout = time.Second
	DefaultStmtTimeout = 5 * time.Second
	DefaultRetries     = 5
	// DefaultMaxRanges is 5 billion rows at the default task_span: more
	// than any table a fleet fills, and far under what fills a Redis.
	DefaultMaxRanges   = 50_000
	DefaultDatabaseEnv = "DATABASE_URL"
)

// Error is one problem in a job file. Line is 0 when the field is absent.
type Error struct {
	Field string
	Line  int
	Msg   string
}

func (e *Error) Error() string {
	switch {
	case e.Field == "" && e.Line > 0:
		return fmt.Sprintf("job file line %d: %s", e.Line, e.Msg)
	case e.Field == "":
		return "job file: " + e.Msg
	}
	if e.Line > 0 {
		return fmt.Sprintf("job file line %d: field %q: %s", e.Line, e.Field, e.Msg)
	}
	return fmt.Sprintf("job file: field %q: %s", e.Field, e.Msg)
}

// Load reads and parses a job file.
func Load(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read job file: %w", err)
	}
	spec, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return spec, nil
}

// Parse decodes a job file, applies defaults and validates it. All problems
// found are returned at once (joined), each an *Error.
func Parse(data []byte) (*Spec, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		// An *Error like every other problem of the file, so callers treat
		// it as bad input (enqueuer exits 2, as documented), with its line.
		e := &Error{Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ") + "; check the indentation, brackets and quotes there"}
		if m := lineMsgRE.FindStringSubmatch(err.Error()); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Msg = "not valid YAML: " + m[2] + "; check the indentation, brackets and quotes there"
		}
		return nil, e
	}
	if len(root.Content) == 0 {
		return nil, &Error{Field: "name", Msg: "job file is empty; see README for a complete example"}
	}
	lines := fieldLines(root.Content[0], "")

	// rate is a number or auto: read apart from the rest of the spec.
	var file struct {
		Spec `yaml:",inline"`
		Rate rateValue `yaml:"rate"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil && !errors.Is(err, io.EOF) {
		return nil, decodeError(err, lines)
	}
	spec := file.Spec
	spec.Rate, spec.AutoRate = file.Rate.rows, file.Rate.auto
	spec.applyDefaults(lines)
	if err := spec.validate(lines); err != nil {
		return nil, err
	}
	return &spec, nil
}

// FromJSON decodes a spec stored by the enqueuer and validates it again, so a
// hand-edited value in Redis cannot smuggle in an invalid job.
func FromJSON(data []byte) (*Spec, error) {
	var spec Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return nil, fmt.Errorf("stored job spec is not valid JSON: %w", err)
	}
	if err := spec.validate(nil); err != nil {
		return nil, fmt.Errorf("stored job spec: %w", err)
	}
	return &spec, nil
}

// JSON encodes the spec for storage.
func (s *Spec) JSON() ([]byte, error) {
	return json.Marshal(s)
}

// TableName splits Table into schema (may be empty) and relation name.
func (s *Spec) TableName() (schema, name string) {
	if i := strings.IndexByte(s.Table, '.'); i >= 0 {
		return s.Table[:i], s.Table[i+1:]
	}
	return "", s.Table
}

// QuotedTable is Table as a quoted SQL identifier ("schema"."name", or
// "name" when the job names no schema): the one place ebb turns the job's
// table into SQL, so every statement quotes it the same way.
func (s *Spec) QuotedTable() string {
	schema, name := s.TableName()
	if schema == "" {
		return pgx.Identifier{name}.Sanitize()
	}
	return pgx.Identifier{schema, name}.Sanitize()
}

// QuotedKey is the key columns as a quoted SQL column list.
func (s *Spec) QuotedKey() string {
	q := make([]string, len(s.Key))
	for i, c := range s.Key {
		q[i] = pgx.Identifier{c}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// RangeCap is the most range tasks the job may enqueue: max_ranges, or
// DefaultMaxRanges for a spec stored before the field existed.
func (s *Spec) RangeCap() int64 {
	if s.MaxRanges > 0 {
		return s.MaxRanges
	}
	return DefaultMaxRanges
}

// RawSQL reports whether the job gives its own write statement.
func (s *Spec) RawSQL() bool { return s.SQL != "" }

var (
	nameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)
	envRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// applyDefaults fills fields the job file leaves out. A field written as 0
// (sleep: 0s) is kept: only absence means "use the default".
func (s *Spec) applyDefaults(lines map[string]int) {
	absent := func(field string) bool { return lines[field] == 0 }
	if absent("task_span") {
		s.TaskSpan = DefaultTaskSpan
	}
	if absent("read_batch") {
		s.ReadBatch = DefaultReadBatch
	}
	if absent("sleep") {
		s.Sleep = Duration(DefaultSleep)
	}
	if absent("timeouts.lock") {
		s.Timeouts.Lock = Duration(DefaultLockTimeout)
	}
	if absent("timeouts.statement") {
		s.Timeouts.Statement = Duration(DefaultStmtTimeout)
	}
	if absent("retries") {
		s.Retries = DefaultRetries
	}
	if absent("max_ranges") {
		s.MaxRanges = DefaultMaxRanges
	}
	if absent("database_env") {
		s.DatabaseEnv = DefaultDatabaseEnv
	}
	if !s.Range.From.set {
		s.Range.From = Auto()
	}
	if !s.Range.To.set {
		s.Range.To = Auto()
	}
	if s.Copy != nil && s.Copy.OnConflict == "" {
		s.Copy.OnConflict = ConflictNothing
	}
	s.applyGuardDefaults(lines)
}

// validate reports every problem of the spec at once, each naming its
// field and line, in the order the job file's reference lists the fields.
func (s *Spec) validate(lines map[string]int) error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &Error{Field: field, Line: lines[field], Msg: fmt.Sprintf(format, args...)})
	}
	s.validateTarget(add)
	s.validateKind(add)
	s.validateBounds(add)
	s.validateGuard(add)
	return errors.Join(errs...)
}

// validateTarget checks what the job walks: its name, table, key and
// pending predicate.
func (s *Spec) validateTarget(add addFunc) {
	switch {
	case s.Name == "":
		add("name", "missing; give the job a name like orders-status (lowercase letters, digits, dashes)")
	case !nameRE.MatchString(s.Name):
		add("name", "%q is not allowed; use 1-63 lowercase letters, digits and dashes, starting with a letter or digit", s.Name)
	}
	if s.Table == "" {
		add("table", "missing; name the table to backfill, e.g. public.orders")
	} else {
		schema, name := s.TableName()
		if (schema != "" && !identRE.MatchString(schema)) || !identRE.MatchString(name) {
			add("table", "%q is not a plain table name; write table or schema.table (letters, digits, underscores)", s.Table)
		}
	}
	switch {
	case len(s.Key) == 0:
		add("key", "missing; name the key column (with a btree index), e.g. id, or the columns of a composite key in index order, e.g. [tenant_id, id]")
	default:
		seen := map[string]bool{}
		for _, c := range s.Key {
			if !identRE.MatchString(c) {
				add("key", "%q is not a plain column name", c)
			} else if seen[c] {
				add("key", "column %q is named twice", c)
			}
			seen[c] = true
		}
	}
	if strings.TrimSpace(s.Pending) == "" {
		add("pending", "missing; give the predicate of rows still to do, e.g. status IS NULL (it makes every batch idempotent)")
	}
}

// validateBounds checks the range, the sizes, the timeouts, the retries and
// where the workers find the database.
func (s *Spec) validateBounds(add addFunc) {
	if !s.Range.From.auto && !s.Range.To.auto && s.Range.From.value > s.Range.To.value {
		add("range", "from %d is above to %d; swap them or use auto", s.Range.From.value, s.Range.To.value)
	}
	if s.TaskSpan < 1 {
		add("task_span", "must be at least 1 (keys per range task), got %d", s.TaskSpan)
	}
	if s.MaxRanges < 0 {
		add("max_ranges", "must not be negative (0 is the default, %d), got %d", DefaultMaxRanges, s.MaxRanges)
	}
	if s.ReadBatch < 1 {
		add("read_batch", "must be at least 1, got %d", s.ReadBatch)
	}
	if s.Sleep < 0 {
		add("sleep", "must not be negative")
	}
	if s.Timeouts.Lock < 0 || s.Timeouts.Statement < 0 {
		add("timeouts", "must not be negative")
	}
	if s.Retries < 1 {
		add("retries", "must be at least 1, got %d", s.Retries)
	}
	switch {
	case strings.Contains(s.DatabaseEnv, "://") || strings.Contains(s.DatabaseEnv, "@") || strings.Contains(s.DatabaseEnv, "="):
		// Never echo it: it is likely a DSN with a password in it.
		add("database_env", "looks like a DSN; put the DSN in an environment variable on the workers and write that variable's name here, e.g. DATABASE_URL")
	case !envRE.MatchString(s.DatabaseEnv):
		add("database_env", "%q is not an environment variable name; name the variable that holds the DSN, e.g. DATABASE_URL", s.DatabaseEnv)
	}
}

// fieldLines maps dotted field paths ("range.from", "guard.rules[0]") below
// the node at path to the line they start on.
func fieldLines(n *yaml.Node, path string) map[string]int {
	out := map[string]int{}
	add := func(sub string, v *yaml.Node, line int) {
		out[sub] = line
		for p, l := range fieldLines(v, sub) {
			out[p] = l
		}
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			sub := k.Value
			if path != "" {
				sub = path + "." + k.Value
			}
			add(sub, n.Content[i+1], k.Line)
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			add(fmt.Sprintf("%s[%d]", path, i), v, v.Line)
		}
	}
	return out
}

var (
	unknownFieldRE = regexp.MustCompile(`line (\d+): field (\S+) not found in type`)
	lineMsgRE      = regexp.MustCompile(`line (\d+): (.*)`)
)

// decodeError turns yaml.v3's errors into ones that name the field and line.
func decodeError(err error, lines map[string]int) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	fieldAt := func(line int) string {
		field := ""
		for f, l := range lines {
			// The deepest path on a line names the value that was wrong.
			if l == line && len(f) > len(field) {
				field = f
			}
		}
		return field
	}
	var errs []error
	for _, msg := range msgs {
		if m := unknownFieldRE.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			errs = append(errs, &Error{Field: m[2], Line: line, Msg: "unknown field; check the spelling against the job file reference in README.md"})
			continue
		}
		if m := lineMsgRE.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			msg := m[2]
			if strings.HasPrefix(msg, "cannot unmarshal") {
				msg += "; check the value's type against the job file reference in README.md"
			}
			errs = append(errs, &Error{Field: fieldAt(line), Line: line, Msg: msg})
			continue
		}
		errs = append(errs, fmt.Errorf("job file: %s", msg))
	}
	return errors.Join(errs...)
}

// FenceTableName is the table, beside the job's table, where workers
// claim ranges and every batch checks its fencing token (batch.Fence): in
// the table's schema, like gh-ost's _ghc changelog table, so it is created
// with the privileges the backfill already has there and dropped with it.
const FenceTableName = "_ebb_fence"

// QuotedFenceTable is FenceTableName in the job table's schema, quoted.
func (s *Spec) QuotedFenceTable() string {
	schema, _ := s.TableName()
	if schema == "" {
		return pgx.Identifier{FenceTableName}.Sanitize()
	}
	return pgx.Identifier{schema, FenceTableName}.Sanitize()
}
