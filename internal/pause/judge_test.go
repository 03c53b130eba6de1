package pause_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ebbhq/ebb/internal/ebbtest"
	"github.com/ebbhq/ebb/internal/ledger"
	"github.com/ebbhq/ebb/internal/pause"
)

// TestJudge: the global flag wins over the job's, the job's over asynq's
// queue pause, and each reason names the switch to turn off.
func TestJudge(t *testing.T) {
	t.Parallel()
	rd := ebbtest.Redis(t)
	l := ledger.New(rd.Client, rd.Prefix)
	p := pause.NewPauser(l, ebbtest.Logger(t))
	tests := []struct {
		name  string
		flags ledger.PauseFlags
		want  pause.Outcome
	}{
		{"nothing set", ledger.PauseFlags{Global: "0", Job: "off"}, pause.Outcome{}},
		{"global first", ledger.PauseFlags{Global: "1", Job: "banana", QueuePaused: true},
			pause.Outcome{Paused: true, Reason: l.GlobalPauseKey() + " is set"}},
		{"job before queue", ledger.PauseFlags{Job: "banana", QueuePaused: true},
			pause.Outcome{Paused: true, Reason: l.PauseKey("j") + " is set (banana)"}},
		{"queue", ledger.PauseFlags{QueuePaused: true},
			pause.Outcome{Paused: true, Reason: `asynq queue "q" is paused (Asynqmon or ` + ledger.QueuePausedKey("q") + ")"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, p.Judge(context.Background(), "j", "q", tc.flags))
		})
	}
}
