package child

import "syscall"

// childSysProcAttr puts a child in its own process group, so the terminal's
// Ctrl-C reaches only the parent, which stops children in order. Pdeathsig
// covers the case the parent cannot: if it is killed outright, the kernel
// sends SIGTERM to the children instead of leaving workers running with
// nobody to stop them. (Pdeathsig fires when the thread that forked exits;
// the Go runtime does not retire threads unless a goroutine exits while
// locked to one, which the parent must never do while it has children.)
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// killGroup sends SIGKILL to the process group led by pid.
func killGroup(pid int) {
	// The error only says the group is already gone.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}
