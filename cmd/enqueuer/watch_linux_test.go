package main

import (
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair; a fresh one has no window size
// (0x0), like a pty a CI runner or script(1) hands a process.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	require.NoError(t, unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0), "unlock pty")
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	require.NoError(t, err)
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return m, s
}

// TestBarsFit: --watch draws bars only on a terminal with a width; a pty
// without a window size gets plain lines, as a pipe does.
func TestBarsFit(t *testing.T) {
	t.Parallel()
	_, pty := openPTY(t)
	_, ok := barsFit(pty)
	require.False(t, ok, "a terminal of width 0")

	require.NoError(t, unix.IoctlSetWinsize(int(pty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80}))
	f, ok := barsFit(pty)
	require.True(t, ok, "an 80-column terminal")
	require.Equal(t, pty, f)

	r, w, err := os.Pipe()
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = r.Close(), w.Close() })
	_, ok = barsFit(w)
	require.False(t, ok, "a pipe")
}
