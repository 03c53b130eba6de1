package ebb_test

import (
	"go/build"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The import rules of docs/architecture.md, checked on every package's
// non-test imports. A new package must be given its layer here (and a line
// in docs/architecture.md), or this test fails.

const module = "github.com/ebbhq/ebb/"

// layer of every package. Arrows point down: cmd → operator and worker →
// core. Operator and worker never import each other, and core imports
// neither.
var layers = map[string]string{
	"bench":        "cmd",
	"cmd/demo":     "cmd",
	"cmd/enqueuer": "cmd",
	"cmd/worker":   "cmd",
	"deploy":       "kit",

	"internal/control":   "operator",
	"internal/ui":        "operator",
	"internal/preflight": "operator",
	"internal/verify":    "operator",

	"internal/runner": "worker",
	"internal/leader": "worker",

	"internal/jobspec":   "core",
	"internal/chunks":    "core",
	"internal/keyspace":  "core",
	"internal/rangetask": "core",
	"internal/batch":     "core",
	"internal/probe":     "core",
	"internal/guard":     "core",
	"internal/pause":     "core",
	"internal/ledger":    "core",
	"internal/progress":  "core",
	"internal/metrics":   "core",
	"internal/clock":     "core",
	"internal/dial":      "core",
	"internal/logger":    "core",
	"internal/child":     "core",
	"internal/throwaway": "core",
	"internal/signing":   "core",

	"internal/ebbtest": "test",
}

// pure packages import nothing of ebb but other pure packages: they are
// plain logic, tested alone.
var pure = []string{"internal/jobspec", "internal/chunks", "internal/keyspace", "internal/rangetask", "internal/clock", "internal/signing"}

// decisionOnly may not do I/O itself: the guard's decision is signals in,
// decision out, so it is table-tested without servers.
var decisionOnly = map[string][]string{
	"internal/guard": {"net/http", "github.com/jackc/pgx", "github.com/redis/go-redis", "github.com/hibiken/asynq"},
}

// allowed says whether a package of layer from may import one of layer to.
func allowed(from, to string) bool {
	switch from {
	case "cmd":
		return to != "cmd" && to != "test"
	case "operator":
		return to == "operator" || to == "core"
	case "worker":
		return to == "worker" || to == "core"
	case "core":
		return to == "core"
	}
	return false
}

func TestImportDirection(t *testing.T) {
	t.Parallel()
	pkgs := ebbPackages(t)
	for _, p := range pkgs {
		if _, ok := layers[p]; !ok {
			t.Errorf("package %s has no layer: add it to layers in architecture_test.go and to docs/architecture.md", p)
		}
	}
	for _, p := range pkgs {
		from := layers[p]
		for _, imp := range imports(t, p) {
			to, ok := layers[imp]
			if !ok || from == "test" {
				continue
			}
			if !allowed(from, to) {
				t.Errorf("%s (%s) imports %s (%s): %s may not import %s", p, from, imp, to, from, to)
			}
		}
		if slices.Contains(pure, p) {
			for _, imp := range imports(t, p) {
				if !slices.Contains(pure, imp) {
					t.Errorf("%s is pure logic but imports %s of ebb", p, imp)
				}
			}
		}
		for _, banned := range decisionOnly[p] {
			for _, imp := range allImports(t, p) {
				if strings.HasPrefix(imp, banned) {
					t.Errorf("%s decides without I/O but imports %s", p, imp)
				}
			}
		}
	}
}

func TestOnlyTheWorkerStartsTheRunner(t *testing.T) {
	t.Parallel()
	for _, p := range ebbPackages(t) {
		if p != "cmd/worker" && slices.Contains(imports(t, p), "internal/runner") {
			t.Errorf("%s imports internal/runner: only cmd/worker runs the worker loop", p)
		}
	}
}

// ebbPackages lists every directory with non-test Go files, relative to the
// module root.
func ebbPackages(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin" || name == "artifacts") {
			return filepath.SkipDir
		}
		if _, err := build.ImportDir(path, 0); err == nil && path != "." {
			out = append(out, filepath.ToSlash(path))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk the module: %v", err)
	}
	if len(out) < 10 {
		t.Fatalf("found only %d packages (%v): is the test running at the module root?", len(out), out)
	}
	return out
}

// imports are p's non-test imports of ebb packages, relative to the module.
func imports(t *testing.T, p string) []string {
	t.Helper()
	var out []string
	for _, imp := range allImports(t, p) {
		if rel, ok := strings.CutPrefix(imp, module); ok {
			out = append(out, rel)
		}
	}
	return out
}

func allImports(t *testing.T, p string) []string {
	t.Helper()
	pkg, err := build.ImportDir(p, 0)
	if err != nil {
		t.Fatalf("read imports of %s: %v", p, err)
	}
	return pkg.Imports
}
