package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	t.Parallel()
	cfg, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.binDir != "bin" || cfg.rows != 1_000_000 || cfg.trafficWorkers != 4 || cfg.timeout != 10*time.Minute ||
		cfg.workers != 2 || cfg.concurrency != 1 || cfg.dbName != "ebb_demo" || cfg.seedOnly ||
		cfg.pauseAt != 30 || cfg.pauseFor != 3*time.Second {
		t.Fatalf("defaults = %+v", cfg)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-rows", "0"}, "-rows"},
		{[]string{"-traffic-workers", "0"}, "-traffic-workers"},
		{[]string{"-timeout", "0s"}, "-timeout"},
		{[]string{"-workers", "-1"}, "-workers"},
		{[]string{"-db", ""}, "-db"},
		{[]string{"-pause-at", "100"}, "-pause-at"},
		{[]string{"-pause-at", "-1"}, "-pause-at"},
		{[]string{"-pause-for", "-1s"}, "-pause-for"},
		{[]string{"extra"}, "unexpected argument"},
	}
	for _, tc := range tests {
		_, err := parseFlags(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseFlags(%q) = %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
}
