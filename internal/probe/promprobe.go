package probe

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/ebbhq/ebb/internal/jobspec"
)

// Baselines of prometheus rules average the query over the window before the
// job starts, at a fixed resolution, so a brief spike at start time does not
// become the normal level.
const (
	promBaselineWindow = model.Duration(10 * time.Minute)
	promBaselineStep   = model.Duration(30 * time.Second)
)

// promClient is one Prometheus server, shared by all prometheus rules.
type promClient struct {
	api promv1.API
	// password is scrubbed from every error: the URL may carry basic-auth
	// credentials, and some transport errors quote the request URL.
	password string
	// where names the server in errors without its password.
	where string
}

func newPromClient(u *url.URL, hc *http.Client) (*promClient, error) {
	c, err := api.NewClient(api.Config{Address: u.String(), Client: hc})
	if err != nil {
		return nil, fmt.Errorf("prometheus client for %s: %w", u.Redacted(), err)
	}
	pw, _ := u.User.Password()
	return &promClient{api: promv1.NewAPI(c), password: pw, where: u.Redacted()}, nil
}

// query evaluates q as an instant query at ts (zero: the server's now) and
// reduces the result to one number, answering an empty result or NaN as
// the rule's on_empty and on_nan say.
func (c *promClient) query(ctx context.Context, q string, ts time.Time, onEmpty, onNaN string) Reading {
	v, warnings, infos, err := c.api.Query(ctx, q, ts)
	if err != nil {
		return Reading{Err: fmt.Errorf("query %s: %w", c.where, scrub(err, c.password))}
	}
	note := promNote(warnings, infos)
	n, err := single(v)
	switch {
	case errors.Is(err, errNoSeries) && onEmpty == jobspec.OnZero:
		return Reading{Value: 0, Note: joinNote(note, "no series: counted as 0 (on_empty: zero)")}
	case err != nil:
		return Reading{Err: err, Note: note}
	case math.IsNaN(n) && onNaN == jobspec.OnZero:
		return Reading{Value: 0, Note: joinNote(note, "NaN: counted as 0 (on_nan: zero)")}
	case math.IsNaN(n):
		// NaN compares false with every limit, so it would read as "all
		// clear" while the query says nothing: count it as blind instead.
		return Reading{Err: fmt.Errorf("returned NaN (a ratio over no traffic, say); until it returns a number the rule counts as blind (slow, then pause); set on_nan: zero if NaN means nothing is wrong"), Note: note}
	}
	return Reading{Value: n, Note: note}
}

// errNoSeries is a query that returned an empty vector.
var errNoSeries = errors.New("returned no series; check the metric name and that Prometheus scrapes it, or wrap the query so it always has a value (e.g. sum(...) or ... or vector(0)); set on_empty: zero if no series means nothing is wrong")

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// promProbe is a prometheus rule: an instant PromQL query that must come back
// as one number.
type promProbe struct {
	rule   string
	query  string
	client *promClient
	// onEmpty and onNaN are the rule's on_empty and on_nan.
	onEmpty, onNaN string
}

// sample evaluates at the server's own now rather than the Sampler's clock:
// a worker whose clock runs ahead would otherwise ask for a future instant
// and get no data.
func (p *promProbe) sample(ctx context.Context) Reading {
	return p.wrap(p.client.query(ctx, p.query, time.Time{}, p.onEmpty, p.onNaN))
}

// baseline asks for the query's average over the window before before, in
// one request: a subquery, so any query (not only a plain series) works.
func (p *promProbe) baseline(ctx context.Context, before time.Time) Reading {
	return p.wrap(p.client.query(ctx, avgOverTime(p.query), before, p.onEmpty, p.onNaN))
}

func (p *promProbe) wrap(r Reading) Reading {
	if r.Err != nil {
		r.Err = fmt.Errorf("rule %s: prometheus %w", p.rule, r.Err)
	}
	return r
}

// avgOverTime wraps q in a subquery average. A trailing # comment in q would
// swallow the closing brackets, so it gets a line of its own.
func avgOverTime(q string) string {
	q = strings.TrimSpace(q)
	if strings.Contains(q, "#") {
		q += "\n"
	}
	return fmt.Sprintf("avg_over_time((%s)[%s:%s])", q, promBaselineWindow, promBaselineStep)
}

// single accepts a scalar or a vector of exactly one sample: a rule compares
// one number, and silently picking one of several series would hide the
// others.
func single(v model.Value) (float64, error) {
	switch v := v.(type) {
	case *model.Scalar:
		return float64(v.Value), nil
	case model.Vector:
		switch len(v) {
		case 1:
			return float64(v[0].Value), nil
		case 0:
			return 0, errNoSeries
		}
		return 0, fmt.Errorf("returned %d series; a rule needs one number, so aggregate them, e.g. sum(...) or max(...)", len(v))
	case nil:
		return 0, fmt.Errorf("returned no result")
	}
	return 0, fmt.Errorf("returned a %s; a rule needs an instant query that gives a scalar or a single-series vector", v.Type())
}

func promNote(warnings promv1.Warnings, infos promv1.Infos) string {
	var parts []string
	if len(warnings) > 0 {
		parts = append(parts, "prometheus warnings: "+strings.Join(warnings, "; "))
	}
	if len(infos) > 0 {
		parts = append(parts, "prometheus info: "+strings.Join(infos, "; "))
	}
	return strings.Join(parts, "; ")
}

// scrub keeps secret out of err's text while keeping err in the chain for
// errors.Is (timeouts, cancellation).
func scrub(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return &scrubbedError{msg: strings.ReplaceAll(err.Error(), secret, "xxxxx"), err: err}
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
