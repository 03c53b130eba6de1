package probe

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/jobspec"
)

// Reading is one sampled number, or why there is none.
type Reading struct {
	Value float64
	// Err non-nil means there is no fresh signal; a rule must never count
	// such a reading as green.
	Err error
	// Note is a caveat for operators about an otherwise valid Value, e.g.
	// that a setting makes the signal read 0.
	Note string
}

// DefaultProbeTimeout bounds one probe. It is short because the leader
// samples every few seconds and a probe that takes longer is itself a sign of
// an overloaded server: better an Err (fail closed) than a late number.
const DefaultProbeTimeout = 3 * time.Second

// defaultHTTPTimeout bounds a Prometheus request when the caller supplies no
// client; the probe's own timeout usually ends it sooner.
const defaultHTTPTimeout = 5 * time.Second

// SamplerConfig is what a Sampler reads from and how. The Sampler closes
// none of the pools or clients given here: whoever created them closes them.
type SamplerConfig struct {
	// Spec holds the rules (Spec.Guard.Rules) and the job's table. Required.
	Spec *jobspec.Spec
	// Primary is the job's database. Required when any built-in signal other
	// than commit_p95_seconds, or any sql rule, is configured.
	Primary *pgxpool.Pool
	// Replica returns a pool for a replica DSN environment variable named in
	// Spec.Guard.Replicas; nil when none are configured. It is called on every
	// sample, so it should cache its pools. Required when Spec.Guard.Replicas
	// is non-empty and a replication_lag_seconds rule exists.
	Replica func(ctx context.Context, env string) (*pgxpool.Pool, error)
	// Getenv reads Spec.Guard.PrometheusEnv. Nil means os.Getenv.
	Getenv func(string) string
	// CommitP95 returns the fleet's own p95 commit time in seconds for the
	// commit_p95_seconds signal. It must return once ctx is done. Nil makes
	// that signal read as an error.
	CommitP95 func(ctx context.Context) (float64, error)
	// HTTPClient talks to Prometheus and to http rules' URLs. Nil means a
	// client with a 5s timeout.
	HTTPClient *http.Client
	// Now is the clock for counter windows. Nil means time.Now.
	Now func() time.Time
	// ProbeTimeout bounds each probe of a Sample, and each sql rule's
	// statement_timeout. Zero means DefaultProbeTimeout.
	ProbeTimeout time.Duration
}

// Sampler reads every rule's signal. It keeps counter state between samples
// (deadlocks per minute, read latency per interval), so it is not safe for
// concurrent use: one leader owns one Sampler.
type Sampler struct {
	cfg    SamplerConfig
	rules  []jobspec.Rule
	probes map[string]probe
	prom   *promClient // nil until a prometheus rule needs it
}

// NewSampler builds one probe per rule of cfg.Spec. It refuses a
// configuration that could never produce a reading: a prometheus rule without
// a usable Prometheus URL, an unknown signal, a missing pool.
func NewSampler(cfg SamplerConfig) (*Sampler, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Sampler{cfg: cfg, probes: map[string]probe{}}
	for i, r := range cfg.Spec.Guard.Rules {
		r = withName(r)
		if r.Name == "" {
			return nil, fmt.Errorf("guard.rules[%d]: a %s rule needs a name", i, r.Kind())
		}
		if _, dup := s.probes[r.Name]; dup {
			return nil, fmt.Errorf("guard.rules[%d]: name %q is used by another rule; names must be unique", i, r.Name)
		}
		p, err := s.newProbe(r)
		if err != nil {
			return nil, fmt.Errorf("guard.rules[%d] (%s): %w", i, r.Name, err)
		}
		s.rules = append(s.rules, r)
		s.probes[r.Name] = p
	}
	return s, nil
}

// Sample reads every rule's signal once, keyed by rule name. Probes run
// concurrently, each under its own ProbeTimeout, so one slow probe costs at
// most that long and cannot starve the others. A probe that fails, times out
// or panics comes back as a Reading with Err set.
func (s *Sampler) Sample(ctx context.Context) map[string]Reading {
	out := make(map[string]Reading, len(s.rules))
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, r := range s.rules {
		p := s.probes[r.Name]
		wg.Go(func() {
			reading := s.sampleOne(ctx, r.Name, p)
			mu.Lock()
			out[r.Name] = reading
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// Baseline measures rule's normal level before the job starts. A prometheus
// rule asks Prometheus for the query's average over the 10 minutes before
// before; any other rule takes samples readings every apart (at least one)
// and averages those that succeeded. A rule with relative limits gets an
// error for a baseline of 0, since any multiple of 0 would trip on the first
// non-zero reading.
func (s *Sampler) Baseline(ctx context.Context, rule jobspec.Rule, before time.Time, samples int, every time.Duration) (float64, error) {
	rule = withName(rule)
	p, err := s.probeFor(rule)
	if err != nil {
		return 0, fmt.Errorf("baseline of rule %s: %w", rule.Name, err)
	}
	var r Reading
	if b, ok := p.(baseliner); ok {
		r = s.baselineOne(ctx, rule.Name, b, before)
	} else {
		r, err = s.averageReadings(ctx, rule.Name, p, max(samples, 1), every)
		if err != nil {
			return 0, err
		}
	}
	if r.Err != nil {
		return 0, fmt.Errorf("baseline of rule %s: %w", rule.Name, r.Err)
	}
	if r.Value == 0 && rule.NeedsBaseline() {
		why := ""
		if r.Note != "" {
			why = " (" + r.Note + ")"
		}
		return 0, fmt.Errorf("baseline of rule %s is 0%s, so a limit relative to it (like 1.2x) would trip on any activity; write absolute limits for this rule (e.g. pause_above: 5) or choose a signal that is above 0 in normal traffic", rule.Name, why)
	}
	return r.Value, nil
}

// CheckPrometheusURL reports whether environment variable env holds a usable
// Prometheus base URL, wording the error for the operator. It never echoes a
// password. A nil getenv means os.Getenv.
func CheckPrometheusURL(getenv func(string) string, env string) error {
	_, err := prometheusURL(getenv, env)
	return err
}

// probe reads one signal. Implementations wrap their errors with the rule or
// signal name.
type probe interface {
	sample(ctx context.Context) Reading
}

// baseliner is a probe that can measure its past level in one request
// instead of sampling it now.
type baseliner interface {
	baseline(ctx context.Context, before time.Time) Reading
}

func (c SamplerConfig) withDefaults() SamplerConfig {
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = DefaultProbeTimeout
	}
	return c
}

func (c SamplerConfig) validate() error {
	if c.Spec == nil {
		return errors.New("sampler: Spec is nil")
	}
	return nil
}

// withName applies the job file's default: a signal rule is named after its
// signal.
func withName(r jobspec.Rule) jobspec.Rule {
	if r.Name == "" {
		r.Name = r.Signal
	}
	return r
}

// probeFor returns the Sampler's own probe for rule when the rule is one of
// the job's, so a baseline primes the same counters Sample will use, and a
// new probe otherwise.
func (s *Sampler) probeFor(rule jobspec.Rule) (probe, error) {
	for _, r := range s.rules {
		if r.Name == rule.Name && r.Signal == rule.Signal && r.Prometheus == rule.Prometheus && r.SQL == rule.SQL && r.HTTP == rule.HTTP && r.JSONField == rule.JSONField {
			return s.probes[r.Name], nil
		}
	}
	return s.newProbe(rule)
}

func (s *Sampler) newProbe(r jobspec.Rule) (probe, error) {
	switch r.Kind() {
	case "prometheus":
		c, err := s.promClient()
		if err != nil {
			return nil, err
		}
		return &promProbe{rule: r.Name, query: r.Prometheus, client: c, onEmpty: r.OnEmpty, onNaN: r.OnNaN}, nil
	case "sql":
		if s.cfg.Primary == nil {
			return nil, errors.New("an sql rule needs the job's database, but SamplerConfig.Primary is nil")
		}
		return &sqlProbe{rule: r.Name, sql: r.SQL, pool: s.cfg.Primary, timeout: s.cfg.ProbeTimeout}, nil
	case "http":
		return newHTTPProbe(r.Name, r.HTTP, r.JSONField, s.cfg.HTTPClient), nil
	}
	return s.newSignalProbe(r.Signal)
}

// promClient builds the Prometheus client on first use, so jobs without
// prometheus rules need no PROMETHEUS_URL.
func (s *Sampler) promClient() (*promClient, error) {
	if s.prom != nil {
		return s.prom, nil
	}
	u, err := prometheusURL(s.cfg.Getenv, s.cfg.Spec.Guard.PrometheusEnv)
	if err != nil {
		return nil, err
	}
	c, err := newPromClient(u, s.cfg.HTTPClient)
	if err != nil {
		return nil, err
	}
	s.prom = c
	return c, nil
}

// sampleOne runs one probe under its own timeout. It turns a panic or a
// non-finite value into Err, because a reading that is neither a number nor
// an error would let a broken probe count as healthy.
func (s *Sampler) sampleOne(ctx context.Context, name string, p probe) Reading {
	return s.bounded(ctx, name, p.sample)
}

// baselineOne is sampleOne for a baseliner's one-request baseline.
func (s *Sampler) baselineOne(ctx context.Context, name string, b baseliner, before time.Time) Reading {
	return s.bounded(ctx, name, func(ctx context.Context) Reading { return b.baseline(ctx, before) })
}

// bounded runs read under ProbeTimeout and turns a panic or a non-finite
// value into Err, for both samples and baselines.
func (s *Sampler) bounded(ctx context.Context, name string, read func(context.Context) Reading) (r Reading) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ProbeTimeout)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			r = Reading{Err: fmt.Errorf("rule %s: probe panicked: %v", name, v)}
		}
	}()
	return finite(name, read(ctx))
}

// averageReadings takes n readings every apart and averages the successful
// ones; it fails only when none succeeded, with the last error.
func (s *Sampler) averageReadings(ctx context.Context, name string, p probe, n int, every time.Duration) (Reading, error) {
	var (
		sum     float64
		ok      int
		lastErr error
		notes   []string
	)
	for i := range n {
		if i > 0 {
			t := time.NewTimer(every)
			select {
			case <-ctx.Done():
				t.Stop()
				return Reading{}, fmt.Errorf("baseline of rule %s: %w", name, ctx.Err())
			case <-t.C:
			}
		}
		r := s.sampleOne(ctx, name, p)
		if r.Err != nil {
			lastErr = r.Err
			continue
		}
		sum += r.Value
		ok++
		if r.Note != "" && !slices.Contains(notes, r.Note) {
			notes = append(notes, r.Note)
		}
	}
	if ok == 0 {
		return Reading{Err: fmt.Errorf("none of %d readings succeeded: %w", n, lastErr)}, nil
	}
	return Reading{Value: sum / float64(ok), Note: strings.Join(notes, "; ")}, nil
}

func finite(name string, r Reading) Reading {
	if r.Err == nil && (math.IsNaN(r.Value) || math.IsInf(r.Value, 0)) {
		return Reading{Err: fmt.Errorf("rule %s: reading is %v, not a number", name, r.Value), Note: r.Note}
	}
	return r
}

// prometheusURL reads and checks the Prometheus base URL. url.Parse quotes
// the whole input in its errors, password included, so errors here name the
// variable and the reason, never the value.
func prometheusURL(getenv func(string) string, env string) (*url.URL, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if env == "" {
		return nil, errors.New("guard.prometheus_env is empty; name the environment variable that holds the Prometheus URL, e.g. PROMETHEUS_URL")
	}
	raw := strings.TrimSpace(getenv(env))
	if raw == "" {
		return nil, fmt.Errorf("environment variable %s is not set; set it to the Prometheus base URL (e.g. http://prometheus:9090) wherever the guard runs, or remove the job's prometheus rules", env)
	}
	u, err := url.Parse(raw)
	if err != nil {
		reason := "unparsable"
		var ue *url.Error
		// The inner reason can quote part of the input (a bad %-escape);
		// only show it when no userinfo could be in there.
		if errors.As(err, &ue) && !strings.Contains(raw, "@") {
			reason = ue.Err.Error()
		}
		return nil, fmt.Errorf("environment variable %s is not a valid URL (%s); set it to the Prometheus base URL, e.g. http://prometheus:9090", env, reason)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("environment variable %s must start with http:// or https://, e.g. http://prometheus:9090", env)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("environment variable %s has no host; set it to the Prometheus base URL, e.g. http://prometheus:9090", env)
	}
	return u, nil
}
