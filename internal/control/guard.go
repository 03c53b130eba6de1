package control

import (
	"errors"
	"fmt"
	"os"

	"github.com/ebbhq/ebb/internal/jobspec"
	"github.com/ebbhq/ebb/internal/probe"
)

// SetGetenv replaces os.Getenv for reading the guard's environment (the
// Prometheus URL); tests running in parallel pass a map.
func (c *Control) SetGetenv(f func(string) string) { c.getenv = f }

func (c *Control) env(k string) string {
	if c.getenv == nil {
		return os.Getenv(k)
	}
	return c.getenv(k)
}

// CheckGuard refuses a job whose guard cannot work where it is planned or
// started: a prometheus rule needs a parsable Prometheus URL in the
// environment variable the job names.
func CheckGuard(spec *jobspec.Spec, getenv func(string) string) error {
	for _, r := range spec.Guard.Rules {
		if r.Kind() == "prometheus" {
			if err := probe.CheckPrometheusURL(getenv, spec.Guard.PrometheusEnv); err != nil {
				return fmt.Errorf("%w: rule %s: %w", ErrBadGuard, r.Name, err)
			}
			return nil
		}
	}
	return nil
}

// ErrBadGuard is a guard configuration that cannot run.
var ErrBadGuard = errors.New("guard cannot run")
