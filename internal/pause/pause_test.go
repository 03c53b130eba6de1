package pause

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFlagOn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value   string
		on, odd bool
	}{
		{"", false, false},
		{"0", false, false},
		{"false", false, false},
		{"OFF", false, false},
		{"1", true, false},
		{"true", true, false},
		{" on ", true, false},
		{"paused by alice@db-1 via enqueuer at 2024-05-01T10:00:00Z", true, false},
		{"Paused by on-call page (10.0.0.7:51234) at 2024-05-01T10:00:00Z", true, false},
		{"paused", true, false},
		{"pausedby", true, true},
		{"banana", true, true},
		{"-1", true, true},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			t.Parallel()
			on, odd := FlagOn(tc.value)
			require.Equal(t, tc.on, on, "paused")
			require.Equal(t, tc.odd, odd, "odd")
		})
	}
}

// TestFlagReason: workers and status name a pause the same way, with who
// paused when the flag says so.
func TestFlagReason(t *testing.T) {
	t.Parallel()
	require.Equal(t, "ebb:pause is set", FlagReason("ebb:pause", "1"))
	require.Equal(t, "ebb:{j}:pause is set (paused by alice@db-1 via enqueuer at 2024-05-01T10:00:00Z)",
		FlagReason("ebb:{j}:pause", "paused by alice@db-1 via enqueuer at 2024-05-01T10:00:00Z"))
	require.Equal(t, "ebb:pause is set (banana)", FlagReason("ebb:pause", "banana"))
}

// TestFlagValue: what enqueuer and the page write names who and when, in
// UTC, and reads as on without a warning.
func TestFlagValue(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	tests := []struct{ by, want string }{
		{"alice@db-1 via enqueuer", "paused by alice@db-1 via enqueuer at 2024-05-01T10:00:00Z"},
		{"", "paused by unknown at 2024-05-01T10:00:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			v := FlagValue(tc.by, at)
			require.Equal(t, tc.want, v)
			on, odd := FlagOn(v)
			require.True(t, on, "paused")
			require.False(t, odd, "odd")
		})
	}
}

// TestReasons: the wording status and workers share.
func TestReasons(t *testing.T) {
	t.Parallel()
	require.Equal(t, `asynq queue "ebb" is paused`, QueueReason("ebb"))
	require.Equal(t, "bad live override, fix it with enqueuer set: ebb:{j}:overrides rate: not a number", OverrideReason("ebb:{j}:overrides rate: not a number"))
}

// Workers and status word a guard's pause from the same function, so an
// operator greps one sentence across logs, status and the page.
func TestGuardReasons(t *testing.T) {
	t.Parallel()
	require.Equal(t, "guard: p95 1.5 above 1.2; lag 9 above 5", GuardReason("pause", []string{"p95 1.5 above 1.2", "lag 9 above 5"}))
	require.Equal(t, "guard: slow", GuardReason("slow", nil), "a decision without reasons still says what it is")
	require.Contains(t, NoDecisionReason(90*time.Second+400*time.Millisecond), "guard: no fresh decision for 1m30s")
}
