package harness

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestLineTime(t *testing.T) {
	tests := []struct {
		n, baud int
		want    time.Duration
	}{
		{4096, 115200, 4096 * 10 * time.Second / 115200},
		{4096, 9600, 4096 * 10 * time.Second / 9600},
		{1152, 115200, 100 * time.Millisecond},
		{100, 0, 0},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, lineTime(tt.n, tt.baud), "n=%d baud=%d", tt.n, tt.baud)
	}
}

func TestTimeoutForGrowsWithLineTime(t *testing.T) {
	fast := &Session{cfg: SessionConfig{CommandTimeout: 2 * time.Second, MaxFrame: 4096, Baud: 115200}}
	slow := &Session{cfg: SessionConfig{CommandTimeout: 2 * time.Second, MaxFrame: 4096, Baud: 9600}}
	tf, retry := fast.timeoutFor("PING", nil)
	assert.True(t, retry)
	ts, _ := slow.timeoutFor("PING", nil)
	// At 9600 baud a full answer alone takes over 4 s: more than the 2 s
	// command timeout, so the deadline must cover it.
	assert.Greater(t, ts, 2*time.Second+4*time.Second)
	assert.Less(t, tf, 2*time.Second+time.Second)
}
