// Package guard decides whether and how fast the fleet may write. It owns
// the rules that turn signal readings into run, slow or pause (Evaluator,
// with for, hysteresis and hold), the Decision the leader publishes
// (Decide, ParseDecision, its TTLs), and the Follower that turns a decision
// plus the live overrides into one batch's Limits. It is pure: readings,
// stored rule memory and time come in as arguments, and nothing here talks
// to PostgreSQL, Redis or Prometheus, so every rule is table-tested on a
// simulated clock. Sampling is package probe's, electing and publishing is
// package leader's, and operators' pause flags are package pause's.
// Guard fails closed: a reading with an error, a missing baseline and a
// decision that is not fresh never count as a green light. README.md
// describes the whole guard across those packages.
package guard
