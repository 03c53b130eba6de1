// Package chunks owns the adaptive batch sizer: how many keys the next write
// batch of a job takes, steered by commit times. It is pure (time is passed
// in, nothing is measured) and imports nothing of ebb. The key space itself
// (slicing it into ranges, where a range resumes) is keyspace's.
package chunks
