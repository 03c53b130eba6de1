package batch_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/batch"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	type class int
	const (
		neither class = iota
		transient
		permanent
	)
	pg := func(code string) error { return &pgconn.PgError{Code: code, Message: "server said " + code} }
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithTimeout(context.Background(), 0)
	t.Cleanup(cancel2)

	tests := []struct {
		name  string
		ctx   context.Context
		err   error
		want  class
		is    error // an error the result must still match with errors.Is
		state string
	}{
		{name: "serialization failure", err: pg("40001"), want: transient, state: "40001"},
		{name: "deadlock", err: pg("40P01"), want: transient, state: "40P01"},
		{name: "lock timeout", err: pg("55P03"), want: transient, state: "55P03"},
		{name: "statement timeout", err: pg("57014"), want: transient, state: "57014"},
		{name: "connection failure", err: pg("08006"), want: transient, state: "08006"},
		{name: "connection does not exist", err: pg("08003"), want: transient, state: "08003"},
		{name: "admin shutdown", err: pg("57P01"), want: transient, state: "57P01"},
		{name: "too many connections", err: pg("53300"), want: transient, state: "53300"},
		{name: "undefined column", err: pg("42703"), want: permanent, state: "42703"},
		{name: "syntax error", err: pg("42601"), want: permanent, state: "42601"},
		{name: "division by zero", err: pg("22012"), want: permanent, state: "22012"},
		{name: "unique violation", err: pg("23505"), want: permanent, state: "23505"},
		{name: "insufficient privilege", err: pg("42501"), want: permanent, state: "42501"},
		{name: "wrapped SQLSTATE", err: fmt.Errorf("exec: %w", pg("40P01")), want: transient, state: "40P01"},
		{name: "connection refused", err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, want: transient, is: syscall.ECONNREFUSED},
		{name: "connection reset mid-query", err: fmt.Errorf("read: %w", io.ErrUnexpectedEOF), want: transient, is: io.ErrUnexpectedEOF},
		// Cancelling a query makes the server answer 57014; with ctx done
		// that means "stop", not "retry".
		{name: "cancelled ctx beats 57014", ctx: cancelled, err: pg("57014"), want: neither, is: context.Canceled, state: "57014"},
		{name: "cancelled ctx beats a network error", ctx: cancelled, err: io.ErrUnexpectedEOF, want: neither, is: context.Canceled},
		{name: "cancelled ctx beats a permanent error", ctx: cancelled, err: pg("42703"), want: neither, is: context.Canceled},
		{name: "expired ctx", ctx: expired, err: pg("57014"), want: neither, is: context.DeadlineExceeded},
		{name: "cancellation error with live ctx", err: fmt.Errorf("acquire: %w", context.Canceled), want: neither, is: context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			got := batch.Classify(ctx, tc.err)
			require.Error(t, got)

			require.Equal(t, tc.want == transient, batch.IsTransient(got), "transient: %v", got)
			require.Equal(t, tc.want == permanent, batch.IsPermanent(got), "permanent: %v", got)
			switch tc.want {
			case transient:
				var te *batch.TransientError
				require.True(t, errors.As(got, &te))
			case permanent:
				var pe *batch.PermanentError
				require.True(t, errors.As(got, &pe))
			}
			if tc.is != nil {
				require.ErrorIs(t, got, tc.is)
			}
			// The database's own error stays reachable for logs and for
			// callers that look at the SQLSTATE.
			require.ErrorIs(t, got, tc.err)
			if tc.state != "" {
				var pgErr *pgconn.PgError
				require.True(t, errors.As(got, &pgErr))
				require.Equal(t, tc.state, pgErr.Code)
			}
		})
	}

	t.Run("nil stays nil", func(t *testing.T) {
		t.Parallel()
		require.NoError(t, batch.Classify(context.Background(), nil))
		require.NoError(t, batch.Classify(cancelled, nil))
	})
}

func TestIsContended(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := func(code string) error { return batch.Classify(ctx, &pgconn.PgError{Code: code}) }
	for code, want := range map[string]bool{
		"40P01": true, "55P03": true, "57014": true, // collided with live traffic
		"40001": false, "08006": false, "53300": false, "42703": false,
	} {
		require.Equal(t, want, batch.IsContended(pg(code)), code)
	}
	require.False(t, batch.IsContended(&pgconn.PgError{Code: "55P03"}), "only classified errors count")
}

// TestIsConnection: an outage (the server went away or will not take a
// session) is told from a failed statement, and from Redis's errors.
func TestIsConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := func(code string) error { return &pgconn.PgError{Code: code} }
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"admin shutdown (restart, pg_terminate_backend)", batch.Classify(ctx, pg("57P01")), true},
		{"server starting", batch.Classify(ctx, pg("57P03")), true},
		{"connection failure class", batch.Classify(ctx, pg("08006")), true},
		{"broken connection mid-batch", fmt.Errorf("write batch: %w", batch.Classify(ctx, io.ErrUnexpectedEOF)), true},
		{"dial refused", fmt.Errorf("write: %w", batch.Classify(ctx, refused)), true},
		{"pool could not connect", &pgconn.ConnectError{}, true},
		{"lock timeout", batch.Classify(ctx, pg("55P03")), false},
		{"bad SQL", batch.Classify(ctx, pg("42703")), false},
		{"read-only", batch.Classify(ctx, pg("25006")), false},
		{"Redis down (never classified)", fmt.Errorf("read pause keys: %w", refused), false},
		{"cancelled", context.Canceled, false},
	} {
		require.Equal(t, tc.want, batch.IsConnection(tc.err), tc.name)
	}
	require.True(t, batch.IsUnwritable(batch.Classify(ctx, pg("25006"))))
	require.True(t, batch.IsUnwritable(batch.Classify(ctx, pg("53100"))))
	require.False(t, batch.IsUnwritable(batch.Classify(ctx, pg("57P01"))))
}
