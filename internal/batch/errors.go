package batch

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
