package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
)

var pageURL = regexp.MustCompile(`on-call page: (http://\S+/)`)

// TestUIServe runs "enqueuer ui" in-process on a free loopback port: the
// page, /healthz and the API answer, the token from EBB_UI_TOKEN guards
// the POSTs, and cancelling the context (SIGINT/SIGTERM in main) stops it
// cleanly with exit 0. Its action log comes in either -log-format, the
// same flag the worker has, so one log pipeline can take both.
func TestUIServe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ format, line string }{
		{"text", `msg="ui paused every job"`},
		{"json", `"msg":"ui paused every job"`},
	} {
		t.Run(tc.format, func(t *testing.T) {
			t.Parallel()
			testUIServe(t, tc.format, tc.line)
		})
	}
}

func testUIServe(t *testing.T, format, logLine string) {
	r := ebbtest.Redis(t)
	env := map[string]string{"REDIS_URL": ebbtest.RedisURL(), "EBB_PREFIX": r.Prefix, "EBB_UI_TOKEN": "env-token"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr ebbtest.Buffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"ui", "-addr", "127.0.0.1:0", "-log-format", format}, &stdout, &stderr, func(k string) string { return env[k] })
	}()
	var base string
	ebbtest.Eventually(t, "the ui command printing its address", func() bool {
		select {
		case code := <-exited:
			t.Fatalf("ui exited early with %d: %s", code, stderr.String())
		default:
		}
		m := pageURL.FindStringSubmatch(stdout.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	})
	require.Contains(t, base, "http://127.0.0.1:")

	get := func(path string) (int, string) {
		res, err := http.Get(base + path)
		require.NoError(t, err)
		defer func() { _ = res.Body.Close() }()
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res.StatusCode, string(body)
	}
	code, body := get("healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)
	code, body = get("")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "ebb · on call")
	code, body = get("api/jobs")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, "[]", body)
	code, body = get("monitoring/")
	require.Equal(t, http.StatusOK, code, "Asynqmon is mounted")
	require.Contains(t, strings.ToLower(body), "<!doctype html>")

	post := func(token string) int {
		req, err := http.NewRequest(http.MethodPost, base+"api/pause", strings.NewReader("{}"))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = res.Body.Close()
		return res.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, post(""), "EBB_UI_TOKEN guards the POSTs")
	require.Equal(t, http.StatusNoContent, post("env-token"))
	require.NoError(t, r.Client.Del(context.Background(), r.Prefix+"pause").Err())
	require.Contains(t, stderr.String(), logLine, "actions are logged, in the format asked for")
	require.NotContains(t, stderr.String(), "warning", "loopback needs no warning")

	cancel()
	var exit int
	ebbtest.Eventually(t, "the ui command stopping", func() bool {
		select {
		case exit = <-exited:
			return true
		default:
			return false
		}
	})
	require.Equal(t, exitOK, exit, stderr.String())
	_, err := http.Get(base + "healthz")
	require.Error(t, err, "the port is closed after the stop")
}

// TestUIInput: -h works; a malformed -addr is bad input (2); a port in use
// or an unreachable Redis is a failure (1); an address beyond loopback
// without a token is warned about; no password is printed.
func TestUIInput(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = busy.Close() })
	r := ebbtest.Redis(t)
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		code    int
		stdout  string
		stderr  string
		without string
	}{
		{name: "help", args: []string{"ui", "-h"}, code: 0, stdout: "enqueuer ui [-addr 127.0.0.1:8080]"},
		{name: "no port", args: []string{"ui", "-addr", "127.0.0.1"}, code: 2, stderr: `-addr "127.0.0.1" is not HOST:PORT`},
		{name: "port out of range", args: []string{"ui", "-addr", "127.0.0.1:99999"}, code: 2, stderr: `port "99999" is not a number from 0 to 65535`},
		{name: "named port", args: []string{"ui", "-addr", "localhost:http"}, code: 2, stderr: `port "http"`},
		{name: "argument", args: []string{"ui", "extra"}, code: 2, stderr: "ui takes no arguments"},
		{name: "bad log format", args: []string{"ui", "-log-format", "yaml"}, code: 2, stderr: `invalid value "yaml" for flag -log-format: use text or json`},
		{name: "unknown flag", args: []string{"ui", "-port", "80"}, code: 2, stderr: "flag provided but not defined: -port"},
		{name: "port in use", args: []string{"ui", "-addr", busy.Addr().String()}, code: 1, stderr: "listen on " + busy.Addr().String()},
		{name: "unreachable redis, open address", args: []string{"ui", "-addr", "0.0.0.0:0"},
			env:  map[string]string{"REDIS_URL": "redis://:s3cret@127.0.0.1:1/0"},
			code: 1, stderr: "-addr 0.0.0.0:0 is not a loopback address and no token is set", without: "s3cret"},
		{name: "open address with a token", args: []string{"ui", "-addr", ":0", "-auth-token", "x"},
			env:  map[string]string{"REDIS_URL": "redis://127.0.0.1:1/0"},
			code: 1, stderr: "cannot reach Redis", without: "warning"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"REDIS_URL": ebbtest.RedisURL(), "EBB_PREFIX": r.Prefix}
			for k, v := range tc.env {
				env[k] = v
			}
			var out, errb bytes.Buffer
			code := run(context.Background(), tc.args, &out, &errb, func(k string) string { return env[k] })
			require.Equal(t, tc.code, code, "stdout: %s\nstderr: %s", out.String(), errb.String())
			require.Contains(t, out.String(), tc.stdout)
			require.Contains(t, errb.String(), tc.stderr)
			if tc.without != "" {
				require.NotContains(t, out.String()+errb.String(), tc.without)
			}
		})
	}
}
