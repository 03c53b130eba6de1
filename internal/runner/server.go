package runner

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
)

// ServerOptions are the knobs of a worker's asynq server.
type ServerOptions struct {
	Queue       string
	Concurrency int
	// ShutdownTimeout must exceed the longest batch (timeouts.statement plus
	// lock wait plus sleep): a draining handler finishes its batch within
	// it, and asynq re-queues whatever is still running after it.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
}

// ServerConfig is the asynq configuration every ebb worker runs with: yields
// are not failures and come back after their own delay.
func ServerConfig(o ServerOptions) asynq.Config {
	if o.Concurrency < 1 {
		o.Concurrency = 1
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	cfg := asynq.Config{
		Concurrency:     o.Concurrency,
		Queues:          map[string]int{o.Queue: 1},
		IsFailure:       IsFailure,
		RetryDelayFunc:  RetryDelay,
		ShutdownTimeout: o.ShutdownTimeout,
		// A paused range is offered again after a couple of seconds; the
		// default 5 s forwarder tick would stretch every resume.
		DelayedTaskCheckInterval: time.Second,
		TaskCheckInterval:        200 * time.Millisecond,
		LogLevel:                 asynq.WarnLevel,
	}
	if o.Logger != nil {
		cfg.Logger = asynqLogger{o.Logger}
	}
	return cfg
}

// asynqLogger adapts slog to asynq.Logger.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) {
	a.l.Debug(fmt.Sprint(args...), slog.String("component", "asynq"))
}
func (a asynqLogger) Info(args ...any) {
	a.l.Info(fmt.Sprint(args...), slog.String("component", "asynq"))
}
func (a asynqLogger) Warn(args ...any) {
	a.l.Warn(fmt.Sprint(args...), slog.String("component", "asynq"))
}
func (a asynqLogger) Error(args ...any) {
	a.l.Error(fmt.Sprint(args...), slog.String("component", "asynq"))
}

// Fatal is called by asynq only on unrecoverable setup errors; it logs
// instead of exiting so the process's own shutdown path still runs.
func (a asynqLogger) Fatal(args ...any) {
	a.l.Error(fmt.Sprint(args...), slog.String("component", "asynq"), slog.Bool("fatal", true))
}
