package preflight

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ebbhq/ebb/internal/keyspace"
)

// smallTable is the estimated row count below which the planner may rightly
// prefer a sequential scan: the note then says so, rather than blaming skew.
const smallTable = 10_000

// checkExplain refuses a read or write statement that cannot use an index
// on the key. It runs EXPLAIN without ANALYZE: nothing is executed. A plan
// that scans the table is asked again with enable_seqscan off, as batches
// run: only a statement that cannot seek the index at all (its bounds on
// another column, a cast of the key) is refused; one the planner merely
// prefers to scan (a small table, a skewed key) passes with a note.
func checkExplain(ctx context.Context, r *Resources) error {
	var est float64
	if err := r.Pool.QueryRow(ctx, "SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)", r.Spec.QuotedTable()).Scan(&est); err != nil {
		return err
	}
	lo := r.Space.Origin()
	if !r.Spec.Range.From.IsAuto() {
		lo = r.Spec.Range.From.Key()
	} else if min, _, ok, err := r.Space.Extremes(ctx, r.Pool, r.Spec.QuotedTable()); err != nil {
		return err
	} else if ok {
		lo = min
	}
	read, after, write, err := r.Samples(lo)
	if err != nil {
		return err
	}
	for _, st := range []Sample{read, after, write} {
		plan, used, err := explainUses(ctx, r, st.SQL, st.Args, false)
		if err != nil {
			return refuse("EXPLAIN of the %s statement failed: %v\nstatement: %s", st.What, err, st.SQL)
		}
		if !used {
			// Batches run with enable_seqscan off, so what counts is
			// whether the statement can seek the index at all.
			_, used, err = explainUses(ctx, r, st.SQL, st.Args, true)
			if err != nil {
				return refuse("EXPLAIN of the %s statement failed: %v", st.What, err)
			}
			switch {
			case used && st.What == afterWhat:
			case used && est < smallTable:
				r.Notes = append(r.Notes, fmt.Sprintf("%s: the planner scans this small table (%.0f rows estimated) but can use the key index; on a large table it will", st.What, est))
			case used:
				r.Notes = append(r.Notes, fmt.Sprintf("%s: the planner would scan the table for this sample batch (a skewed key misleads its estimate); batches run with enable_seqscan off and seek the key index", st.What))
			}
		}
		if !used {
			return refuse("the %s statement would not use an index on %s (indexes: %v); fix the pending predicate or the write so the key bounds can seek the index\nplan:\n%s", st.What, r.Spec.Key, r.KeyIndexes, plan)
		}
	}
	return nil
}

// Sample is one of the job's statements with values to EXPLAIN it with.
type Sample struct {
	What string
	SQL  string
	Args []any
}

// afterWhat names the read after a checkpoint. It differs from the first
// read only in > for >=, so a small table's note is not said twice.
const afterWhat = "read after a checkpoint"

// Samples binds the job's statements to a batch that starts at lo: the
// first read and the read after a checkpoint span read_batch keys, the
// write batch.max keys.
func (r *Resources) Samples(lo keyspace.Key) (read, after, write Sample, err error) {
	readHi, err := r.Space.Ahead(lo, int64(r.Spec.ReadBatch))
	if err != nil {
		return read, after, write, err
	}
	writeHi, err := r.Space.Ahead(lo, int64(r.Spec.Batch.Max))
	if err != nil {
		return read, after, write, err
	}
	readArgs, err := r.Space.Args(lo, readHi)
	if err != nil {
		return read, after, write, err
	}
	writeArgs, err := r.Space.Args(lo, writeHi)
	if err != nil {
		return read, after, write, err
	}
	readArgs = append(readArgs, r.Spec.ReadBatch)
	return Sample{"read", r.Stmts.ReadFrom, readArgs}, Sample{afterWhat, r.Stmts.ReadAfter, readArgs},
		Sample{"write", r.Stmts.Write, writeArgs}, nil
}

// Explain returns the text EXPLAIN of a statement for the plan output, as
// a batch runs it: with enable_seqscan off.
func Explain(ctx context.Context, r *Resources, sql string, args ...any) (string, error) {
	tx, err := r.Pool.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
		return "", err
	}
	rows, err := tx.Query(ctx, "EXPLAIN "+sql, args...)
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", err
	}
	out := ""
	for _, l := range lines {
		out += l + "\n"
	}
	return out, nil
}

func explainUses(ctx context.Context, r *Resources, sql string, args []any, noSeqScan bool) (string, bool, error) {
	// A transaction that always rolls back: EXPLAIN of an UPDATE executes
	// nothing, but SET LOCAL must not leak into the pool.
	tx, err := r.Pool.Begin(ctx)
	if err != nil {
		return "", false, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if noSeqScan {
		if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
			return "", false, err
		}
	}
	var raw []byte
	if err := tx.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+sql, args...).Scan(&raw); err != nil {
		return "", false, err
	}
	var doc []struct {
		Plan map[string]any `json:"Plan"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || len(doc) == 0 {
		return string(raw), false, fmt.Errorf("unreadable EXPLAIN output: %v", err)
	}
	want := map[string]bool{}
	for _, n := range r.KeyIndexes {
		want[n] = true
	}
	return string(raw), usesIndex(doc[0].Plan, want), nil
}

// usesIndex walks a JSON plan for a node that scans one of the key indexes.
func usesIndex(node map[string]any, want map[string]bool) bool {
	if name, ok := node["Index Name"].(string); ok && want[name] {
		return true
	}
	children, _ := node["Plans"].([]any)
	for _, c := range children {
		if m, ok := c.(map[string]any); ok && usesIndex(m, want) {
			return true
		}
	}
	return false
}
