//go:build unix && !linux

package child

import "syscall"

// childSysProcAttr puts a child in its own process group, so the terminal's
// Ctrl-C reaches only the parent, which stops children in order.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// killGroup sends SIGKILL to the process group led by pid.
func killGroup(pid int) {
	// The error only says the group is already gone.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}
