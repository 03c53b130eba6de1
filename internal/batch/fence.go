package batch

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebbhq/ebb/internal/keyspace"
)

// ErrFenced means the batch's fencing token is stale: another worker
// claimed the range after this one, and the batch rolled back without a
// row changed. The worker must stop working on the range.
var ErrFenced = errors.New("range taken over by a newer worker (fencing token is stale)")

// fencedState is the SQLSTATE the fence check raises. Class EB is not
// PostgreSQL's, so no other error can carry it.
const fencedState = "EB001"

// Fence is a worker's claim on one range: the token every batch of this
// run carries. The fence table holds, per range, the newest token handed
// out and the last key committed under it; a batch's first statement
// checks the token and moves the cursor to the batch's last key, in the
// batch's own transaction. So a stale worker's batch either ran before the
// claim that replaced it (the claim waits for its row lock, then reads its
// cursor) or fails the check and rolls back: there is no moment at which
// both can commit. docs/reliability.md tells the whole story.
type Fence struct {
	Job   string
	Range int64
	Token int64
}

// fenceDDL creates the fence table. The cursor is keyspace's encoding of
// the last key committed under the range's newest token; NULL until one
// batch committed (or after repair reopened the range).
const fenceDDL = `CREATE TABLE IF NOT EXISTS %s (
  job text NOT NULL,
  range_id bigint NOT NULL,
  token bigint NOT NULL,
  run text NOT NULL DEFAULT '',
  cursor text,
  claimed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (job, range_id)
)`

// EnsureFenceTable creates table (quoted, e.g. jobspec's
// QuotedFenceTable) unless it exists. Workers of a fleet start together:
// an advisory lock keeps their CREATEs from colliding in the catalog.
func (e *Executor) EnsureFenceTable(ctx context.Context, table string) error {
	pool := e.pool
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil {
		return fmt.Errorf("look up fence table %s: %w", table, err)
	}
	if exists {
		return nil
	}
	h := fnv.New64a()
	h.Write([]byte("ebb fence " + table))
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(h.Sum64())); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, fmt.Sprintf(fenceDDL, table))
		return err
	})
	if err != nil {
		return fmt.Errorf("create fence table %s (ebb's claim on each range; create it yourself with %q, or grant CREATE on the table's schema): %w",
			table, fmt.Sprintf(fenceDDL, table), err)
	}
	return nil
}

// claimLockTimeout bounds how long a claim waits for the row lock of a
// batch still open under the range's previous token. The wait is the
// point: it ends when that batch commits or rolls back (a stalled worker's
// transaction ends at the idle-in-transaction limit, IdleInTransaction).
// No live query ever waits on the fence table.
const claimLockTimeout = "60s"

// Claim hands this run of a range a new fencing token, newer than every
// token handed out before, and returns it with the last key committed
// under any earlier token of the same job run (ok false when none is
// recorded). Every later Write carries the token. A claim for another run
// (the job was started again from scratch) keeps raising the token but
// forgets the cursor.
func (e *Executor) Claim(ctx context.Context, table, job, run string, rangeID int64) (f Fence, cursor keyspace.Key, ok bool, err error) {
	var enc *string
	err = pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT set_config('lock_timeout', '"+claimLockTimeout+"', true)"); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO `+table+` AS f (job, range_id, token, run) VALUES ($1, $2, 1, $3)
ON CONFLICT (job, range_id) DO UPDATE SET token = f.token + 1, claimed_at = now(),
  cursor = CASE WHEN f.run = EXCLUDED.run THEN f.cursor END, run = EXCLUDED.run
RETURNING f.token, f.cursor`, job, rangeID, run).Scan(&f.Token, &enc)
	})
	if err != nil {
		return Fence{}, keyspace.Key{}, false, fmt.Errorf("claim range %d in %s: %w", rangeID, table, Classify(ctx, err))
	}
	f.Job, f.Range = job, rangeID
	e.fence, e.fenceTable = &f, table
	if enc == nil {
		return f, keyspace.Key{}, false, nil
	}
	cursor, err = keyspace.DecodeKey(*enc)
	if err != nil {
		return Fence{}, keyspace.Key{}, false, fmt.Errorf("fence table %s holds %q as range %d's cursor, not a key; set it to NULL to redo the range from its checkpoint in Redis", table, *enc, rangeID)
	}
	return f, cursor, true, nil
}

// Reset closes the connections of the executor's pool, leaving it open:
// for a server whose state changed under them (it took no writes, and its
// sessions keep the read-only default they began with).
func (e *Executor) Reset() { e.pool.Reset() }

// ForgetCursors clears the cursors of ranges that are to run again from
// their start (enqueuer repair), keeping their tokens: a token must never
// go down, or a stale worker's could match again.
func ForgetCursors(ctx context.Context, pool *pgxpool.Pool, table, job string, rangeIDs []int64) error {
	if len(rangeIDs) == 0 {
		return nil
	}
	_, err := pool.Exec(ctx, "UPDATE "+table+" SET cursor = NULL WHERE job = $1 AND range_id = ANY($2)", job, rangeIDs)
	if err != nil && !isUndefinedTable(err) {
		return fmt.Errorf("forget cursors of %s ranges %v in %s: %w", job, rangeIDs, table, err)
	}
	return nil
}

// DropFence removes a job's rows from the fence table (enqueuer cleanup).
// A missing table has nothing to remove.
func DropFence(ctx context.Context, pool *pgxpool.Pool, table, job string) error {
	_, err := pool.Exec(ctx, "DELETE FROM "+table+" WHERE job = $1", job)
	if err != nil && !isUndefinedTable(err) {
		return fmt.Errorf("delete %s's rows from fence table %s: %w", job, table, err)
	}
	return nil
}

// fenceSQL is the check a fenced batch begins with, inline in its
// beginQuery so it costs no round trip: move the range's cursor to the
// batch's last key if the token is still the newest, else raise
// fencedState, which rolls the transaction back before its write ran. The
// UPDATE takes the fence row's lock for the whole batch, which is what
// makes a claim wait for it.
func fenceSQL(table string, f *Fence, cursor string) string {
	body := "BEGIN UPDATE " + table + " SET cursor = " + literal(cursor) +
		" WHERE job = " + literal(f.Job) + " AND range_id = " + strconv.FormatInt(f.Range, 10) +
		" AND token = " + strconv.FormatInt(f.Token, 10) +
		"; IF NOT FOUND THEN RAISE EXCEPTION USING ERRCODE = '" + fencedState + "', MESSAGE = " +
		literal(fmt.Sprintf("ebb: range %d of job %s was claimed by a newer worker; token %d is stale", f.Range, f.Job, f.Token)) +
		"; END IF; END"
	tag := dollarTag(body)
	return "DO " + tag + body + tag
}

// literal quotes s as an SQL string constant. A doubled quote is the one
// escape a standard string needs; standard_conforming_strings has been on
// by default since PostgreSQL 9.1, and E” strings are never built here.
func literal(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// dollarTag is a dollar-quote tag that body does not contain. A text key
// is the table's data, which anyone who can insert a row controls: a key
// holding the tag would otherwise end the block early.
func dollarTag(body string) string {
	for n := 0; ; n++ {
		tag := "$ebb" + strconv.Itoa(n) + "$"
		if !strings.Contains(body, tag) {
			return tag
		}
	}
}

func isUndefinedTable(err error) bool {
	var pgErr interface{ SQLState() string }
	return errors.As(err, &pgErr) && pgErr.SQLState() == "42P01"
}
