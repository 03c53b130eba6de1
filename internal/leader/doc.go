// Package leader runs the guard on the fleet: every worker runs a Leader,
// and for each job the one worker holding the job's lease samples the
// signals (package probe), steps the rules and publishes the decision
// (package guard) into the ledger, fenced by the lease, every check
// interval. It owns lease election and hand-over, the per-job check loop,
// retrying baselines start could not measure (probe.MeasureBaselines) and
// the fleet's own p95 commit time; what a decision means for a batch is the guard's Follower, read by the runner.
// A leader that cannot watch a job publishes a pause saying why and steps
// aside. See internal/guard/README.md, "The leader".
package leader
