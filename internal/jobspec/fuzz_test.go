package jobspec_test

import (
	"testing"

	"github.com/ebbhq/ebb/internal/jobspec"
)

// FuzzParse: no job file makes the parser panic, and every file it accepts
// survives the trip through Redis (JSON, then FromJSON's checks) intact.
// Seeds: the inline ones below and testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"name: fill\ntable: public.orders\nkey: id\npending: status IS NULL\nset: status = 'x'\n",
		"name: fill\ntable: orders\nkey: [tenant_id, id]\npending: v IS NULL\nsql: UPDATE orders SET v = 1 WHERE (tenant_id, id) BETWEEN ($1, $2) AND ($3, $4)\n",
		"name: a\ntable: t\nkey: id\npending: 'true'\nset: a = 1\nrate: auto\nobjective: {signal: commit_p95_seconds, max: 2x}\n",
		"name: a\ntable: t\nkey: id\nrange: {from: 1, to: 9223372036854775807}\ntask_span: 1\nmax_ranges: 3\ndelete: true\npending: 'true'\n",
		"name: [\n", "{}", "", "name: a\n\tset: x\n", "name: a\ntable: t\nkey: id\nguard:\n  rules:\n    - {name: r, sql: 'select 1', slow: 1, pause: 2}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := jobspec.Parse(data)
		if err != nil {
			return
		}
		raw, err := spec.JSON()
		if err != nil {
			t.Fatalf("accepted spec does not encode: %v", err)
		}
		if _, err := jobspec.FromJSON(raw); err != nil {
			t.Fatalf("accepted spec fails its own stored form's checks: %v\nfile: %q\njson: %s", err, data, raw)
		}
	})
}
