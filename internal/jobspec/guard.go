package jobspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// BatchSize is the write batch: a plain number in a job file is a fixed size;
// {size, min, max, target} lets each worker steer its size so the p90 of its
// commit times sits at target.
type BatchSize struct {
	Size   int      `yaml:"size" json:"size"`
	Min    int      `yaml:"min" json:"min"`
	Max    int      `yaml:"max" json:"max"`
	Target Duration `yaml:"target" json:"target"`
}

// Adaptive reports whether the size may move at all.
func (b BatchSize) Adaptive() bool { return b.Target > 0 && b.Min < b.Max }

// DefaultBatchTarget is the commit time an adaptive batch aims at: short
// enough that a user write colliding with a batch barely notices.
const DefaultBatchTarget = 300 * time.Millisecond

// UnmarshalYAML accepts a number (fixed size) or a mapping.
func (b *BatchSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		v, err := strconv.Atoi(strings.TrimSpace(n.Value))
		if err != nil {
			return fmt.Errorf("line %d: %q is not a batch size; write a number of rows or {size, min, max, target}", n.Line, n.Value)
		}
		*b = BatchSize{Size: v, Min: v, Max: v}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: batch must be a number of rows or {size, min, max, target}", n.Line)
	}
	for i := 0; i < len(n.Content); i += 2 {
		if k := n.Content[i].Value; !slices.Contains([]string{"size", "min", "max", "target"}, k) {
			return fmt.Errorf("line %d: field %s not found in type jobspec.BatchSize", n.Content[i].Line, k)
		}
	}
	type plain BatchSize
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*b = BatchSize(p)
	return nil
}

// UnmarshalJSON reads the stored form, and a plain number as a fixed size.
func (b *BatchSize) UnmarshalJSON(data []byte) error {
	var n int
	if err := json.Unmarshal(data, &n); err == nil {
		*b = BatchSize{Size: n, Min: n, Max: n}
		return nil
	}
	type plain BatchSize
	var p plain
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("batch: %w", err)
	}
	*b = BatchSize(p)
	return nil
}

// Guard is the job's stop rules and how often the leader samples them.
type Guard struct {
	CheckEvery Duration `yaml:"check_every" json:"check_every"`
	// Rules nil means the default rules; an explicit empty list means none.
	Rules []Rule `yaml:"rules" json:"rules"`
	// Replicas names environment variables holding replica DSNs, whose
	// replay lag counts toward replication_lag_seconds.
	Replicas []string `yaml:"replicas,omitempty" json:"replicas,omitempty"`
	// PrometheusEnv names the environment variable with the Prometheus URL.
	PrometheusEnv string `yaml:"prometheus_env" json:"prometheus_env"`
}

// Rule compares one signal with its limits.
type Rule struct {
	Name       string `yaml:"name,omitempty" json:"name,omitempty"`
	Signal     string `yaml:"signal,omitempty" json:"signal,omitempty"`
	Prometheus string `yaml:"prometheus,omitempty" json:"prometheus,omitempty"`
	SQL        string `yaml:"sql,omitempty" json:"sql,omitempty"`
	// HTTP is a URL answering GET with one number, as plain text or, with
	// JSONField, in a JSON document (gh-ost's throttle-http, for a
	// service that publishes its own health without Prometheus).
	HTTP       string    `yaml:"http,omitempty" json:"http,omitempty"`
	JSONField  string    `yaml:"json_field,omitempty" json:"json_field,omitempty"`
	SlowAbove  Threshold `yaml:"slow_above,omitempty" json:"slow_above,omitzero"`
	PauseAbove Threshold `yaml:"pause_above,omitempty" json:"pause_above,omitzero"`
	ClearBelow Threshold `yaml:"clear_below,omitempty" json:"clear_below,omitzero"`
	For        Duration  `yaml:"for,omitempty" json:"for,omitempty"`
	// OnEmpty and OnNaN say what a prometheus rule's query returning no
	// series, or NaN, means: OnBlind (the default: the rule cannot see, so
	// the guard slows, then pauses the job) or OnZero (count it as 0, for
	// a query over traffic that may not be there yet).
	OnEmpty string `yaml:"on_empty,omitempty" json:"on_empty,omitempty"`
	OnNaN   string `yaml:"on_nan,omitempty" json:"on_nan,omitempty"`
}

// What a prometheus rule's empty or NaN result counts as.
const (
	OnBlind = "blind"
	OnZero  = "zero"
)

// Kind says where a rule's number comes from.
func (r Rule) Kind() string {
	switch {
	case r.Prometheus != "":
		return "prometheus"
	case r.SQL != "":
		return "sql"
	case r.HTTP != "":
		return "http"
	}
	return "signal"
}

// NeedsBaseline reports whether any limit is relative to the baseline.
func (r Rule) NeedsBaseline() bool {
	return r.SlowAbove.Relative || r.PauseAbove.Relative || r.ClearBelow.Relative
}

// Built-in signals, each one number sampled by the guard leader.
const (
	SignalReplicationLagSeconds = "replication_lag_seconds"
	SignalReplicationLagBytes   = "replication_lag_bytes"
	SignalLockWaits             = "lock_waits"
	SignalDeadlocks             = "deadlocks"
	SignalActiveConnections     = "active_connections"
	SignalLongestTransaction    = "longest_transaction_seconds"
	SignalReadLatencyMS         = "read_latency_ms"
	SignalAutovacuumOnTable     = "autovacuum_on_table"
	SignalWALArchiveBacklog     = "wal_archive_backlog"
	SignalCommitP95             = "commit_p95_seconds"
	SignalDeadTuplesRatio       = "dead_tuples_ratio"
)

// Signals lists every built-in signal name.
var Signals = []string{
	SignalReplicationLagSeconds, SignalReplicationLagBytes, SignalLockWaits, SignalDeadlocks,
	SignalActiveConnections, SignalLongestTransaction, SignalReadLatencyMS, SignalAutovacuumOnTable,
	SignalWALArchiveBacklog, SignalCommitP95, SignalDeadTuplesRatio,
}

// DefaultCheckEvery is how often the leader samples when the job says not.
const DefaultCheckEvery = 5 * time.Second

// DefaultRules are the field guide's stop numbers, used when a job file
// names no rules.
func DefaultRules() []Rule {
	return []Rule{
		{Name: SignalReplicationLagSeconds, Signal: SignalReplicationLagSeconds, SlowAbove: Abs(2), PauseAbove: Abs(10), ClearBelow: Abs(2)},
		{Name: SignalLockWaits, Signal: SignalLockWaits, PauseAbove: Abs(5), ClearBelow: Abs(5), For: Duration(30 * time.Second)},
		// deadlocks counts the last minute: three in a minute pauses.
		{Name: SignalDeadlocks, Signal: SignalDeadlocks, PauseAbove: Abs(2), ClearBelow: Abs(1)},
		{Name: SignalActiveConnections, Signal: SignalActiveConnections, SlowAbove: Abs(0.8), ClearBelow: Abs(0.8)},
	}
}

// DeadTuplesRule is the rule a delete job adds to the default rules: every
// deleted row stays behind as a dead tuple until vacuum removes it, and a
// table more dead than alive bloats its indexes and slows every scan of
// live traffic. Autovacuum starts at 20 % dead by default
// (autovacuum_vacuum_scale_factor), so past 30 % the delete outruns it:
// slow down; past 60 % pause until vacuum catches up.
func DeadTuplesRule() Rule {
	return Rule{Name: SignalDeadTuplesRatio, Signal: SignalDeadTuplesRatio, SlowAbove: Abs(0.3), PauseAbove: Abs(0.6), ClearBelow: Abs(0.2)}
}

// Threshold is an absolute limit (5, 80%) or a multiple of the rule's
// baseline (1.2x).
type Threshold struct {
	Value    float64
	Relative bool
	Set      bool
}

// Abs is an absolute threshold.
func Abs(v float64) Threshold { return Threshold{Value: v, Set: true} }

// Rel is a threshold of v times the baseline.
func Rel(v float64) Threshold { return Threshold{Value: v, Relative: true, Set: true} }

// IsZero lets omitzero drop unset thresholds.
func (t Threshold) IsZero() bool { return !t.Set }

// Resolve turns the threshold into a number given the baseline.
func (t Threshold) Resolve(baseline float64) float64 {
	if t.Relative {
		return t.Value * baseline
	}
	return t.Value
}

func (t Threshold) String() string {
	switch {
	case !t.Set:
		return ""
	case t.Relative:
		return strconv.FormatFloat(t.Value, 'g', -1, 64) + "x"
	}
	return strconv.FormatFloat(t.Value, 'g', -1, 64)
}

// UnmarshalYAML accepts 5, 0.8, "80%" or "1.2x".
func (t *Threshold) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseThreshold(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*t = v
	return nil
}

// MarshalYAML writes the threshold as it would be typed.
func (t Threshold) MarshalYAML() (any, error) { return t.String(), nil }

// MarshalJSON writes the threshold as a string ("5", "1.2x").
func (t Threshold) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }

// UnmarshalJSON reads what MarshalJSON wrote.
func (t *Threshold) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("threshold: %w", err)
	}
	if s == "" {
		*t = Threshold{}
		return nil
	}
	v, err := parseThreshold(s)
	if err != nil {
		return err
	}
	*t = v
	return nil
}

func parseThreshold(s string) (Threshold, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("%q is not a threshold; write a number (5, 0.8), a percentage (80%%) or a multiple of the baseline (1.2x)", s)
	num, scale, rel := s, 1.0, false
	switch {
	case strings.HasSuffix(s, "x"):
		num, rel = strings.TrimSuffix(s, "x"), true
	case strings.HasSuffix(s, "%"):
		num, scale = strings.TrimSuffix(s, "%"), 0.01
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return Threshold{}, bad
	}
	return Threshold{Value: v * scale, Relative: rel, Set: true}, nil
}

// Schedule multiplies the rate by time of day in a named zone.
type Schedule struct {
	Timezone string   `yaml:"timezone" json:"timezone"`
	Windows  []Window `yaml:"windows" json:"windows"`
}

// Window is a span of some weekdays with a rate multiplier (0 pauses). From
// after To wraps past midnight.
type Window struct {
	Days string  `yaml:"days" json:"days"`
	From string  `yaml:"from" json:"from"`
	To   string  `yaml:"to" json:"to"`
	Rate float64 `yaml:"rate" json:"rate"`
}

// Factor is the rate multiplier at t and the window that set it; 1 and ""
// outside every window. The first matching window wins.
func (s *Schedule) Factor(t time.Time) (float64, string) {
	if s == nil || len(s.Windows) == 0 {
		return 1, ""
	}
	loc, err := time.LoadLocation(s.Timezone)
	if err != nil {
		// validate refused this already; fail towards slower.
		return 0, "unknown time zone " + s.Timezone
	}
	local := t.In(loc)
	minute := local.Hour()*60 + local.Minute()
	for _, w := range s.Windows {
		days, from, to, err := w.parse()
		if err != nil {
			continue
		}
		day := local.Weekday()
		in := false
		switch {
		case from < to:
			in = days[day] && minute >= from && minute < to
		default: // wraps past midnight: the evening belongs to day, the morning to the day before
			prev := (day + 6) % 7
			in = (days[day] && minute >= from) || (days[prev] && minute < to)
		}
		if in {
			return w.Rate, w.String()
		}
	}
	return 1, ""
}

func (w Window) String() string {
	return fmt.Sprintf("%s %s-%s x%g", w.Days, w.From, w.To, w.Rate)
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// parse reads days ("mon-fri", "sat,sun", "mon-sun") and times ("11:30",
// "24:00") into a weekday set and minutes of the day.
func (w Window) parse() (days [7]bool, from, to int, err error) {
	if strings.TrimSpace(w.Days) == "" {
		return days, 0, 0, fmt.Errorf("days missing; write e.g. mon-fri or sat,sun")
	}
	for _, part := range strings.Split(strings.ToLower(w.Days), ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, ok1 := weekdays[strings.TrimSpace(lo)]
		b := a
		ok2 := true
		if isRange {
			b, ok2 = weekdays[strings.TrimSpace(hi)]
		}
		if !ok1 || !ok2 {
			return days, 0, 0, fmt.Errorf("days %q: %q is not a weekday or range; use mon, tue, wed, thu, fri, sat, sun and ranges like mon-fri", w.Days, part)
		}
		for d := a; ; d = (d + 1) % 7 {
			days[d] = true
			if d == b {
				break
			}
		}
	}
	if from, err = clock(w.From); err != nil {
		return days, 0, 0, err
	}
	if to, err = clock(w.To); err != nil {
		return days, 0, 0, err
	}
	if from == to {
		return days, 0, 0, fmt.Errorf("from and to are both %s; a window must have a length (00:00 to 24:00 is all day)", w.From)
	}
	return days, from, to, nil
}

func clock(s string) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("%q is not a time of day; write HH:MM, e.g. \"11:30\" (quote it in YAML)", s)
	}
	return hh*60 + mm, nil
}

// applyGuardDefaults fills the limits, guard and batch fields a job file
// leaves out.
func (s *Spec) applyGuardDefaults(lines map[string]int) {
	absent := func(field string) bool { return lines[field] == 0 }
	switch {
	case absent("batch"):
		s.Batch = BatchSize{Size: DefaultBatch, Min: DefaultBatch, Max: DefaultBatch}
	case absent("batch.size") && absent("batch.min") && absent("batch.max") && absent("batch.target"):
		// a plain number: fixed, already filled by UnmarshalYAML
	default:
		if absent("batch.size") {
			s.Batch.Size = DefaultBatch
		}
		if absent("batch.min") {
			s.Batch.Min = max(1, s.Batch.Size/10)
		}
		if absent("batch.max") {
			s.Batch.Max = max(s.Batch.Size, min(s.Batch.Size*10, s.ReadBatch))
		}
		if absent("batch.target") {
			s.Batch.Target = Duration(DefaultBatchTarget)
		}
	}
	if absent("guard.check_every") {
		s.Guard.CheckEvery = Duration(DefaultCheckEvery)
	}
	if absent("guard.rules") {
		s.Guard.Rules = DefaultRules()
		if s.Delete {
			s.Guard.Rules = append(s.Guard.Rules, DeadTuplesRule())
		}
	}
	if absent("guard.prometheus_env") {
		s.Guard.PrometheusEnv = "PROMETHEUS_URL"
	}
	for i := range s.Guard.Rules {
		r := &s.Guard.Rules[i]
		if r.Name == "" {
			r.Name = r.Signal
		}
		if !r.ClearBelow.Set {
			r.ClearBelow = lowest(r.SlowAbove, r.PauseAbove)
		}
	}
	s.applyAutoDefaults()
}

// lowest is the lower of the set thresholds: a rule clears when its signal
// falls below the level that first made it act.
func lowest(a, b Threshold) Threshold {
	switch {
	case !a.Set:
		return b
	case !b.Set:
		return a
	case a.Value <= b.Value:
		return a
	}
	return b
}

// addFunc records one validation error against a job-file field.
type addFunc func(field, format string, args ...any)

// validateGuard checks the limits, the guard and the schedule of a job
// file, in the order the errors are reported.
func (s *Spec) validateGuard(add addFunc) {
	s.validateLimits(add)
	s.validateAuto(add)
	s.validateBatch(add)
	s.Guard.validateSettings(add)
	s.Guard.validateRules(add)
	s.Schedule.validate(add)
}

// validateLimits checks the fleet-wide limits.
func (s *Spec) validateLimits(add addFunc) {
	if s.Rate < 0 {
		add("rate", "must not be negative (rows per second for the whole fleet; 0 means unlimited), got %g", s.Rate)
	}
	if s.MaxWorkers < 0 {
		add("max_workers", "must not be negative (batches in flight across the fleet; 0 means unlimited), got %d", s.MaxWorkers)
	}
}

// validateBatch checks the write batch against itself and read_batch; it
// reports the first problem only, since the later checks assume the
// earlier ones hold.
func (s *Spec) validateBatch(add addFunc) {
	b := s.Batch
	switch {
	case b.Size < 1 || b.Min < 1:
		add("batch", "size and min must be at least 1, got size %d min %d", b.Size, b.Min)
	case b.Min > b.Size || b.Size > b.Max:
		add("batch", "needs min <= size <= max, got min %d size %d max %d", b.Min, b.Size, b.Max)
	case s.ReadBatch > 0 && b.Max > s.ReadBatch:
		add("batch", "%d is above read_batch %d; a write batch is a slice of one read, so lower batch (or its max) or raise read_batch", b.Max, s.ReadBatch)
	case b.Target < 0:
		add("batch", "target must not be negative")
	}
}

// validateSettings checks the guard's own settings: its interval and the
// environment variables it reads.
func (g Guard) validateSettings(add addFunc) {
	if g.CheckEvery < Duration(time.Second) {
		add("guard.check_every", "must be at least 1s, got %s", g.CheckEvery.D())
	}
	for i, env := range g.Replicas {
		if !envRE.MatchString(env) {
			// Never echo it: it may be a DSN.
			add("guard.replicas", "entry %d is not an environment variable name; name the variable that holds the replica's DSN", i+1)
		}
	}
	if !envRE.MatchString(g.PrometheusEnv) {
		add("guard.prometheus_env", "must name the environment variable that holds the Prometheus URL, e.g. PROMETHEUS_URL")
	}
}

// validateRules checks every rule, and that rule names are unique.
func (g Guard) validateRules(add addFunc) {
	names := map[string]bool{}
	for i, r := range g.Rules {
		field := fmt.Sprintf("guard.rules[%d]", i)
		r.validateSource(field, add)
		if r.Name != "" && names[r.Name] {
			add(field, "name %q is used by another rule; names must be unique", r.Name)
		}
		names[r.Name] = true
		r.validateLimits(field, add)
	}
}

// validateSource checks that the rule reads exactly one known signal, and
// has a name when no signal names it.
func (r Rule) validateSource(field string, add addFunc) {
	sources := 0
	for _, v := range []string{r.Signal, r.Prometheus, r.SQL, r.HTTP} {
		if v != "" {
			sources++
		}
	}
	switch {
	case sources != 1:
		add(field, "give exactly one of signal (built-in), prometheus (a PromQL query), sql (a read-only query returning one number) or http (a URL answering one number)")
	case r.HTTP != "":
		if err := checkHTTPURL(r.HTTP); err != nil {
			add(field, "http: %v", err)
		}
	case r.Signal != "" && !slices.Contains(Signals, r.Signal):
		add(field, "unknown signal %q; built-in signals are %s", r.Signal, strings.Join(Signals, ", "))
	case r.JSONField != "" && r.HTTP == "":
		add(field, "json_field reads a number out of an http rule's JSON answer; this rule has no http")
	case r.Signal == "" && r.Name == "":
		add(field, "a %s rule needs a name, shown as the reason when it slows or pauses the job", r.Kind())
	}
	for _, f := range []struct{ name, v string }{{"on_empty", r.OnEmpty}, {"on_nan", r.OnNaN}} {
		switch {
		case f.v == "":
		case r.Prometheus == "":
			add(field, "%s applies to prometheus rules only", f.name)
		case f.v != OnBlind && f.v != OnZero:
			add(field, "%s must be %s (the default: the rule cannot see, so the guard slows, then pauses the job) or %s (count it as 0), got %q", f.name, OnBlind, OnZero, f.v)
		}
	}
}

// validateLimits checks that the rule's limits can fire and clear: at
// least one limit, all absolute or all relative, pause at or above slow,
// clear at or under both, and a non-negative for.
func (r Rule) validateLimits(field string, add addFunc) {
	if !r.SlowAbove.Set && !r.PauseAbove.Set {
		add(field, "needs slow_above or pause_above (or both)")
	}
	ths := []Threshold{r.SlowAbove, r.PauseAbove, r.ClearBelow}
	for _, a := range ths {
		for _, b := range ths {
			if a.Set && b.Set && a.Relative != b.Relative {
				add(field, "mixes absolute and baseline-relative (1.2x) limits; write all of them one way")
			}
		}
	}
	if r.SlowAbove.Set && r.PauseAbove.Set && r.PauseAbove.Value < r.SlowAbove.Value {
		add(field, "pause_above %s is below slow_above %s; pausing is the stronger step", r.PauseAbove, r.SlowAbove)
	}
	if r.ClearBelow.Set {
		for _, t := range []struct {
			name string
			th   Threshold
		}{{"pause_above", r.PauseAbove}, {"slow_above", r.SlowAbove}} {
			if t.th.Set && t.th.Value < r.ClearBelow.Value {
				add(field, "%s %s is below clear_below %s; the rule would fire and clear at once (clear_below must be at or under every limit)", t.name, t.th, r.ClearBelow)
			}
		}
	}
	if r.For < 0 {
		add(field, "for must not be negative")
	}
}

// validate checks the schedule's zone and windows; a nil schedule is valid.
func (s *Schedule) validate(add addFunc) {
	if s == nil {
		return
	}
	if _, err := time.LoadLocation(s.Timezone); err != nil || s.Timezone == "" {
		add("schedule.timezone", "%q is not a time zone; use an IANA name like Europe/Berlin or UTC", s.Timezone)
	}
	for i, w := range s.Windows {
		field := fmt.Sprintf("schedule.windows[%d]", i)
		if _, _, _, err := w.parse(); err != nil {
			add(field, "%v", err)
		}
		if w.Rate < 0 || math.IsNaN(w.Rate) {
			add(field, "rate multiplier must be 0 (pause) or more, got %g", w.Rate)
		}
	}
}

// checkHTTPURL accepts an http(s) URL without credentials: the job spec is
// stored in Redis, where a password must never go.
func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL", raw)
	}
	if u.User != nil {
		return errors.New("the URL carries credentials, and the job spec is stored in Redis, where no password may go; serve the number without them (e.g. on an internal port)")
	}
	return nil
}
