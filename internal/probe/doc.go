// Package probe samples the signals the guard judges: one probe per rule of
// a job file (built-in PostgreSQL signals, PromQL queries, operators' SQL,
// the fleet's own commit times), run concurrently by a Sampler under a
// per-probe timeout, plus the baselines relative limits compare against. It
// owns reading numbers and saying why a number is missing (Reading.Err);
// deciding what a number means is the guard's (package guard), and storing
// baselines or running on a schedule is the leader's (package leader).
// Probes fail closed: an error, a timeout, a panic or a non-finite value
// comes back as Reading.Err, never as a healthy 0. Pools and HTTP clients
// are passed in and never closed here. See README.md for every signal.
package probe
