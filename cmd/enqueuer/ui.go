package main

import (
	"context"
	"errors"
)

const uiHelp = `enqueuer ui [-addr 127.0.0.1:8080] [-auth-token TOKEN]

Serves the on-call page (not built yet).
`

func runUI(ctx context.Context, e *env, args []string) error {
	fs := newFlags("ui", uiHelp, e)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	return errors.New("ui: not built yet")
}
