package main

import (
	"os"
	"regexp"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestJobFileIsTheDocumentedJob(t *testing.T) {
	t.Parallel()
	path, err := writeJobFile(t.TempDir(), "demo-orders-abc123")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := yaml.Unmarshal(raw, &got); err != nil {
		t.Fatalf("job file is not valid YAML: %v\n%s", err, raw)
	}
	want := map[string]any{
		"name":         "demo-orders-abc123",
		"table":        "public.demo_orders",
		"key":          "id",
		"pending":      "status IS NULL",
		"set":          "status = 'state_' || legacy_state",
		"check":        "status = 'state_' || legacy_state",
		"task_span":    50000,
		"read_batch":   5000,
		"batch":        500,
		"sleep":        "50ms",
		"retries":      5,
		"database_env": "DATABASE_URL",
		"rate":         20000,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	rng, _ := got["range"].(map[string]any)
	if rng["from"] != "auto" || rng["to"] != "auto" {
		t.Errorf("range = %#v, want from/to auto", got["range"])
	}
	to, _ := got["timeouts"].(map[string]any)
	if to["lock"] != "1s" || to["statement"] != "5s" {
		t.Errorf("timeouts = %#v, want lock 1s, statement 5s", got["timeouts"])
	}
	g, _ := got["guard"].(map[string]any)
	if g["check_every"] != "2s" || len(g) != 1 {
		t.Errorf("guard = %#v, want only check_every 2s (the default rules)", got["guard"])
	}
	if len(got) != len(want)+3 {
		t.Errorf("job file has %d fields, want %d: %v", len(got), len(want)+3, got)
	}
}

func TestRunNames(t *testing.T) {
	t.Parallel()
	job, queue, err := runNames()
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^demo-orders-([0-9a-f]{6})$`).FindStringSubmatch(job)
	if m == nil {
		t.Fatalf("job name %q does not look like demo-orders-<6 hex>", job)
	}
	if queue != "demo-"+m[1] {
		t.Fatalf("queue %q does not share the job's suffix %s", queue, m[1])
	}
}

func TestIndent(t *testing.T) {
	t.Parallel()
	if got := indent("a\nb\n", "  "); got != "  a\n  b\n" {
		t.Fatalf("indent = %q", got)
	}
	if got := indent("\n", "  "); got != "" {
		t.Fatalf("indent of blank = %q, want empty", got)
	}
}
