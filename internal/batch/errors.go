package batch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// PermanentError is a database error that retrying cannot fix (bad SQL, an
// undefined column, a permission or constraint problem). The range fails at
// once with the database's message instead of retrying in a storm.
type PermanentError struct {
	Err error
}

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, &PermanentError{}) match any permanent error.
func (e *PermanentError) Is(target error) bool {
	_, ok := target.(*PermanentError)
	return ok
}

// TransientError is a database error worth retrying after a backoff: a
// deadlock, a serialization failure, a lock or statement timeout, a lost
// connection.
type TransientError struct {
	Err error
}

func (e *TransientError) Error() string { return "transient: " + e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, &TransientError{}) match any transient error.
func (e *TransientError) Is(target error) bool {
	_, ok := target.(*TransientError)
	return ok
}

// IsPermanent reports whether err was classified permanent.
func IsPermanent(err error) bool { return errors.Is(err, &PermanentError{}) }

// IsTransient reports whether err was classified transient.
func IsTransient(err error) bool { return errors.Is(err, &TransientError{}) }

// transientStates are retried; every other SQLSTATE is permanent.
var transientStates = map[string]bool{
	"40001": true, // serialization_failure
	"40P01": true, // deadlock_detected
	"55P03": true, // lock_not_available (lock_timeout)
	"57014": true, // query_canceled (statement_timeout)
	"57P01": true, // admin_shutdown: the server restarts
	"57P02": true, // crash_shutdown
	"57P03": true, // cannot_connect_now: the server is starting
	"53300": true, // too_many_connections
	"53400": true, // configuration_limit_exceeded
}

// Classify wraps err as transient or permanent. A done ctx wins over
// everything: cancelling a query surfaces as 57014, which must read as "stop"
// rather than "retry".
func Classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%w (%w)", ctxErr, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if pgErr.Code == fencedState {
			return fmt.Errorf("%w: %w", ErrFenced, err)
		}
		if transientStates[pgErr.Code] || strings.HasPrefix(pgErr.Code, "08") {
			return &TransientError{Err: err}
		}
		return &PermanentError{Err: err}
	}
	// No SQLSTATE: the connection broke or could not be made.
	return &TransientError{Err: err}
}

// contendedStates mean the batch collided with live traffic: it waited on a
// lock, ran into a statement timeout or deadlocked. The batch sizer cuts the
// size at once on these, and a range that keeps hitting them is split.
var contendedStates = map[string]bool{
	"40P01": true, // deadlock_detected
	"55P03": true, // lock_not_available (lock_timeout)
	"57014": true, // query_canceled (statement_timeout)
}

// IsContended reports whether err is a lock timeout, statement timeout or
// deadlock.
func IsContended(err error) bool {
	var pgErr *pgconn.PgError
	return IsTransient(err) && errors.As(err, &pgErr) && contendedStates[pgErr.Code]
}

// connectionStates mean the server went away or is not taking sessions:
// a restart, a failover, an administrator ending backends.
var connectionStates = map[string]bool{
	"57P01": true, // admin_shutdown (also pg_terminate_backend)
	"57P02": true, // crash_shutdown
	"57P03": true, // cannot_connect_now: the server is starting
}

// IsConnection reports whether err means the database could not be
// reached or dropped the session (a dial error, a broken connection,
// SQLSTATE class 08 or 57P01-57P03), rather than that a statement failed:
// an outage, which a range waits out instead of counting it against its
// retries. A done context is never one. A broken connection counts only
// as Classify saw it, so a Redis client's network error, which never
// passes through Classify, is not taken for the database's.
func IsConnection(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || connectionStates[pgErr.Code]
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	var transient *TransientError
	if !errors.As(err, &transient) {
		return false
	}
	var netErr net.Error
	return errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		strings.Contains(err.Error(), "conn closed")
}

// unwritableStates mean the database takes no writes at all for now: a
// standby or a read-only switch, a full disk. Retrying a batch changes
// nothing until someone fixes it.
var unwritableStates = map[string]bool{
	"25006": true, // read_only_sql_transaction
	"53100": true, // disk_full
}

// IsUnwritable reports whether err says the database takes no writes
// (read-only, or out of disk space): the job should pause, not retry.
func IsUnwritable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && unwritableStates[pgErr.Code]
}

// Reasons a batch failed, as Reason names them (the reason label of
// ebb_batch_errors_total).
const (
	ReasonDeadlock         = "deadlock"
	ReasonLockTimeout      = "lock_timeout"
	ReasonStatementTimeout = "statement_timeout"
	ReasonSerialization    = "serialization"
	ReasonConnection       = "connection"
	ReasonUnwritable       = "unwritable"
	ReasonFenced           = "fenced"
	ReasonOther            = "other"
)

// Reason names why a batch's read or write failed, for the metrics: one
// small fixed set, so the label never grows with error messages.
func Reason(err error) string {
	var pgErr *pgconn.PgError
	errors.As(err, &pgErr)
	switch {
	case errors.Is(err, ErrFenced):
		return ReasonFenced
	case IsConnection(err):
		return ReasonConnection
	case IsUnwritable(err):
		return ReasonUnwritable
	case pgErr == nil:
		return ReasonOther
	case pgErr.Code == "40P01":
		return ReasonDeadlock
	case pgErr.Code == "55P03":
		return ReasonLockTimeout
	case pgErr.Code == "57014":
		return ReasonStatementTimeout
	case pgErr.Code == "40001":
		return ReasonSerialization
	}
	return ReasonOther
}
