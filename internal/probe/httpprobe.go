package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// httpMaxBody caps what an http rule reads of an answer: one number, or a
// small JSON document holding it.
const httpMaxBody = 64 << 10

// httpProbe is an http rule: GET a URL that answers one number, as plain
// text or in a JSON field (gh-ost's throttle-http), for a service that
// publishes its own health without Prometheus.
type httpProbe struct {
	rule   string
	url    string
	field  string
	client *http.Client
	// where names the endpoint in errors without its query string, which
	// may hold a token.
	where string
}

func newHTTPProbe(rule, raw, field string, client *http.Client) *httpProbe {
	where := raw
	if u, err := url.Parse(raw); err == nil {
		u.RawQuery, u.User = "", nil
		where = u.String()
	}
	return &httpProbe{rule: rule, url: raw, field: field, client: client, where: where}
}

func (p *httpProbe) sample(ctx context.Context) Reading {
	v, err := p.get(ctx)
	if err != nil {
		return Reading{Err: fmt.Errorf("rule %s: GET %s: %w", p.rule, p.where, err)}
	}
	return Reading{Value: v}
}

func (p *httpProbe) get(ctx context.Context) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json, text/plain")
	resp, err := p.client.Do(req)
	if err != nil {
		// A *url.Error quotes the whole URL; keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			return 0, ue.Err
		}
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, httpMaxBody))
	if err != nil {
		return 0, fmt.Errorf("read the answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return 0, fmt.Errorf("answered %s; the rule needs a 2xx answer holding one number", resp.Status)
	}
	if p.field == "" {
		return parseNumber(strings.TrimSpace(string(body)))
	}
	return jsonNumber(body, p.field)
}

// jsonNumber reads the number at a dotted path (a.b.0.c: object fields and
// array indexes) of a JSON document; a string holding a number counts.
func jsonNumber(body []byte, path string) (float64, error) {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return 0, fmt.Errorf("the answer is not JSON (json_field %q needs a JSON document): %w", path, err)
	}
	cur := doc
	for _, part := range strings.Split(path, ".") {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[part]
			if !ok {
				return 0, fmt.Errorf("the answer has no field %q (json_field %q)", part, path)
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(v) {
				return 0, fmt.Errorf("json_field %q: %q is not an index of an array of %d", path, part, len(v))
			}
			cur = v[i]
		default:
			return 0, fmt.Errorf("json_field %q: %q is inside a %T, not an object or array", path, part, cur)
		}
	}
	switch v := cur.(type) {
	case json.Number:
		return parseNumber(v.String())
	case string:
		return parseNumber(v)
	}
	return 0, fmt.Errorf("json_field %q holds %v, not a number", path, cur)
}

func parseNumber(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if len(s) > 40 {
			s = s[:40] + "…"
		}
		return 0, fmt.Errorf("the answer %q is not a number", s)
	}
	return v, nil
}
