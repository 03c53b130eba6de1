package signing_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/signing"
)

func TestSignVerify(t *testing.T) {
	t.Parallel()
	k, err := signing.Parse("0123456789abcdef0123456789abcdef")
	require.NoError(t, err)
	msg := []byte(`{"name":"fill","sql":"UPDATE t SET a = 1 WHERE id BETWEEN $1 AND $2"}`)
	sig := k.Sign(signing.KindSpec, msg)
	require.NoError(t, k.Verify(signing.KindSpec, msg, sig))

	tampered := []byte(`{"name":"fill","sql":"DELETE FROM t WHERE id BETWEEN $1 AND $2"}`)
	require.ErrorIs(t, k.Verify(signing.KindSpec, tampered, sig), signing.ErrMismatch)
	require.ErrorIs(t, k.Verify(signing.KindTask, msg, sig), signing.ErrMismatch, "a spec's signature does not pass for a task")
	require.ErrorIs(t, k.Verify(signing.KindSpec, msg, ""), signing.ErrMismatch, "unsigned")
	require.ErrorIs(t, k.Verify(signing.KindSpec, msg, "zz"), signing.ErrMismatch, "malformed")
	other, _ := signing.Parse("another key of at least sixteen")
	require.ErrorIs(t, other.Verify(signing.KindSpec, msg, sig), signing.ErrMismatch)

	var none signing.Key
	require.Empty(t, none.Sign(signing.KindSpec, msg))
	require.NoError(t, none.Verify(signing.KindSpec, tampered, ""), "without a key nothing is checked")

	_, err = signing.Parse("short")
	require.ErrorContains(t, err, "EBB_SIGNING_KEY")
	k, err = signing.Parse("")
	require.NoError(t, err)
	require.False(t, k.Enabled())
}
