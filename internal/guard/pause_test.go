package guard

import (
	"testing"

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
