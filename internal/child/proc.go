// Package child runs the subprocesses of ebb's tools (the demo, the
// benchmark): long-running ones such as workers, whose output goes to a log
// file, and short-lived ones such as enqueuer commands, whose output comes
// back to the caller. Each runs in its own process group, so a Ctrl-C in the
// terminal reaches only the parent, which stops its children in order:
// SIGTERM, a grace period, then SIGKILL to the whole group.
package child

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Process is a long-running subprocess (a worker) whose output goes to a log
// file. It runs in its own process group so a Ctrl-C in the terminal reaches
// only the parent, which then stops it in order: SIGTERM, a grace period for
// the worker's graceful shutdown, and only then SIGKILL.
type Process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	logFile *os.File
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid once done is closed
}

// Start starts path with args and env, its output going to a new log file at
// logPath, and reaps it in the background. name identifies the process in
// errors.
func Start(name, path string, args, env []string, logPath string) (*Process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: create log: %w", name, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = env
	cmd.Stdin = nil
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, path, err)
	}
	p := &Process{name: name, logPath: logPath, cmd: cmd, logFile: logFile, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Name returns the name the process was started with.
func (p *Process) Name() string { return p.name }

// Pid returns the process's id, which is also its process group's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// LogPath returns the path of the file the process's output goes to.
func (p *Process) LogPath() string { return p.logPath }

// Done returns a channel that is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has already ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// Stop ends the process: SIGTERM, then SIGKILL to its whole group if it has
// not exited within grace. It returns the process's exit error only when it
// had to be killed; exiting on SIGTERM is the expected outcome.
//
// Whatever happened to the process itself, anything it started and left in
// its group is killed at the end: a crashed worker must not leave helpers
// running behind the parent. The kernel does not hand out a pid that is
// still some group's id, so while a member lives the signal can only reach
// that group; once none is left, reaching a stranger would take the pid to
// cycle through pid_max in the moment between the exit and this call.
func (p *Process) Stop(grace time.Duration) error {
	pid := p.cmd.Process.Pid
	defer killGroup(pid)
	if done, _ := p.Exited(); done {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop %s: signal: %w", p.name, err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
	}
	killGroup(pid)
	<-p.done
	return fmt.Errorf("stop %s: still running %s after SIGTERM, killed", p.name, grace)
}

// Run runs a short-lived tool command (an enqueuer command, say) and returns
// its stdout. stderr is returned inside the error when the command fails,
// because that is where a CLI explains itself. On ctx cancellation the
// command gets SIGTERM first.
func Run(ctx context.Context, timeout time.Duration, path string, args, env []string) (stdout []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	var out, errBuf bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errBuf
	cmd.SysProcAttr = childSysProcAttr()
	runErr := cmd.Run()
	if runErr != nil {
		if ctx.Err() != nil {
			runErr = fmt.Errorf("%w (%w)", runErr, ctx.Err())
		}
		// stdout goes back to the caller, which shows it (verify's report);
		// repeating it in the error would print it twice.
		if msg := strings.TrimSpace(errBuf.String()); msg != "" {
			runErr = fmt.Errorf("%w: %s", runErr, msg)
		}
		return out.Bytes(), fmt.Errorf("%s %s: %w", filepath.Base(path), strings.Join(args, " "), runErr)
	}
	if errBuf.Len() > 0 {
		// A successful command's stderr carries its log lines; keep them
		// visible after stdout so nothing the tool said is lost.
		out.WriteString(errBuf.String())
	}
	return out.Bytes(), nil
}

// Tail returns the last n lines of the file at path, for error messages that
// point at a crashed child's log. A file that cannot be read yields a note
// saying so instead, since the caller is already reporting an error.
func Tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	defer f.Close()
	const maxTail = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > maxTail {
		if _, err := f.Seek(st.Size()-maxTail, io.SeekStart); err != nil {
			return fmt.Sprintf("(cannot read %s: %v)", path, err)
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	return lastLines(string(b), n)
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// SetEnv returns env with key set to val, replacing every earlier
// definition. Duplicates would be resolved differently by different
// programs, so none are left.
func SetEnv(env []string, key, val string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); ok && k == key {
			continue
		}
		out = append(out, kv)
	}
	return append(out, key+"="+val)
}

// Getenv returns the last value of key in env, as the process started with
// env would see it, or "" when env does not set it.
func Getenv(env []string, key string) string {
	val := ""
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			val = v
		}
	}
	return val
}
