package ebb_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ebbhq/ebb/internal/jobspec"
)

// TestReadmeJobFiles: every job file the README shows is one ebb accepts,
// as written, and every prometheus rule in it says what a query with no
// series or NaN means (on_empty, on_nan): the README's first example used
// to pause itself within seconds on a fleet with no traffic yet.
func TestReadmeJobFiles(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(raw), -1)
	jobs := 0
	for _, b := range blocks {
		body := b[1]
		if !regexp.MustCompile(`(?m)^name: `).MatchString(body) {
			continue // a fragment of a job file
		}
		jobs++
		spec, err := jobspec.Parse([]byte(body))
		if err != nil {
			t.Errorf("README job file %q does not parse: %v", firstLine(body), err)
			continue
		}
		for _, r := range spec.Guard.Rules {
			if r.Prometheus != "" && (r.OnEmpty == "" || r.OnNaN == "") {
				t.Errorf("README job file %q: prometheus rule %s does not say what no series or NaN means (on_empty, on_nan)", firstLine(body), r.Name)
			}
		}
	}
	if jobs < 5 {
		t.Fatalf("found %d job files in README.md; the pattern must have broken", jobs)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
