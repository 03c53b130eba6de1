package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// jobRate is the job file's rate: the fleet writes at most this many rows
// per second, and enqueuer verify reads no faster.
const jobRate = 20000

// jobFileTemplate is the demo's backfill, written the way an operator would.
// The set expression derives status from legacy_state, and check restates
// it, so enqueuer verify tests every row's value, not only that none is
// still NULL. The DSN comes from DATABASE_URL in the environment, never
// from the file. The fleet is held to jobRate rows/s and the guard watches
// the default stop rules (replication lag, lock waits, deadlocks,
// connections).
const jobFileTemplate = `name: %s
table: public.demo_orders
key: id
pending: status IS NULL
set: status = 'state_' || legacy_state
check: status = 'state_' || legacy_state
range: {from: auto, to: auto}
task_span: 50000
read_batch: 5000
batch: 500
sleep: 50ms
timeouts: {lock: 1s, statement: 5s}
retries: 5
database_env: DATABASE_URL
rate: %d
guard: {check_every: 2s}
`

// jobFile renders the job file for job name.
func jobFile(name string) string { return fmt.Sprintf(jobFileTemplate, name, jobRate) }

// writeJobFile writes the job file into dir and returns its path.
func writeJobFile(dir, name string) (string, error) {
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(jobFile(name)), 0o600); err != nil {
		return "", fmt.Errorf("write job file: %w", err)
	}
	return path, nil
}

// runNames returns the job and queue names of one demo run. A fresh suffix
// per run means a run never sees the ledger or queue of an earlier one, even
// one that was killed before it could clean up.
func runNames() (job, queue string, err error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("random run id: %w", err)
	}
	suffix := hex.EncodeToString(b[:])
	return "demo-orders-" + suffix, "demo-" + suffix, nil
}

// indent prefixes every line of s, for showing a tool's output inside the
// demo's own.
func indent(s, prefix string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix) + "\n"
}
