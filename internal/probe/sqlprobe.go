package probe

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// rollbackTimeout bounds the rollback after a probe query, which runs even
// when the probe's context is spent.
const rollbackTimeout = time.Second

// sqlProbe is an sql rule: an operator's query returning one number. It runs
// in a READ ONLY transaction so a mistaken or malicious statement in a job
// file cannot write, and under statement_timeout so it cannot outlive the
// probe on the server. The extended protocol pgx uses refuses several
// statements in one string, so the query cannot COMMIT its way out first.
type sqlProbe struct {
	rule    string
	sql     string
	pool    *pgxpool.Pool
	timeout time.Duration
}

func (p *sqlProbe) sample(ctx context.Context) Reading {
	v, err := p.query(ctx)
	if err != nil {
		return Reading{Err: fmt.Errorf("rule %s: sql: %w", p.rule, err)}
	}
	return Reading{Value: v}
}

func (p *sqlProbe) query(ctx context.Context) (float64, error) {
	tx, err := p.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, fmt.Errorf("begin read-only transaction: %w", err)
	}
	defer func() {
		// Detached from ctx: when the probe timed out, a rollback on the
		// spent context would fail and the pool would have to drop the
		// connection instead of reusing it.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	ms := strconv.FormatInt(max(p.timeout.Milliseconds(), 1), 10)
	if _, err := tx.Exec(ctx, "SELECT set_config('statement_timeout', $1, true)", ms); err != nil {
		return 0, fmt.Errorf("set statement_timeout: %w", err)
	}
	rows, err := tx.Query(ctx, p.sql)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	fields := rows.FieldDescriptions()
	// Read before judging the shape: a statement's own error (a write in
	// this read-only transaction, a timeout) only shows once it has run,
	// and it says more than "0 columns".
	var (
		values []any
		n      int
	)
	for n < 2 && rows.Next() {
		n++
		if n == 1 {
			if values, err = rows.Values(); err != nil {
				return 0, fmt.Errorf("read result: %w", err)
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	switch {
	case len(fields) != 1:
		return 0, fmt.Errorf("returned %d columns; return exactly one numeric column", len(fields))
	case n == 0:
		return 0, errors.New("returned no rows; return exactly one row, e.g. wrap the value in coalesce(..., 0) or an aggregate such as count(*) or max(...)")
	case n > 1:
		return 0, errors.New("returned more than one row; return exactly one, e.g. with an aggregate such as max(...) or sum(...)")
	}
	return number(fields[0].Name, typeName(rows, fields[0].DataTypeOID), values[0])
}

// number accepts the SQL number types. Text that happens to hold digits is
// refused rather than parsed, so a query that returns a label by mistake
// fails loudly instead of comparing garbage.
func number(col, typ string, v any) (float64, error) {
	switch v := v.(type) {
	case nil:
		return 0, fmt.Errorf("column %q is NULL; return a number, e.g. with coalesce(..., 0) if no value means 0", col)
	case int16:
		return float64(v), nil
	case int32:
		return float64(v), nil
	case int64:
		return float64(v), nil
	case float32:
		return float64(v), nil
	case float64:
		return v, nil
	case pgtype.Numeric:
		f, err := v.Float64Value()
		if err != nil || !f.Valid {
			return 0, fmt.Errorf("column %q: numeric value cannot be read as a number", col)
		}
		return f.Float64, nil
	}
	return 0, fmt.Errorf("column %q is %s, not a number; return int, bigint, float or numeric (cast with ::numeric if it holds digits)", col, typ)
}

func typeName(rows pgx.Rows, oid uint32) string {
	if t, ok := rows.Conn().TypeMap().TypeForOID(oid); ok {
		return t.Name
	}
	return "type OID " + strconv.FormatUint(uint64(oid), 10)
}
