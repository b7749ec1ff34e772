package harness

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/boards/sim"
	"github.com/hiltest/hiltest/internal/ser2nettest"
	"github.com/hiltest/hiltest/protocol"
	"github.com/hiltest/hiltest/reference"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// A simulated board bridged to TCP by a real ser2net: the session opens it
// as rfc2217://127.0.0.1:PORT, resets it (ser2net on a pty does not
// acknowledge DTR/RTS, so the classic reset falls back to the RESET verb),
// handshakes, and runs PING and DERIVE. When ser2net is killed the session
// re-opens the port once ser2net is back, or marks the board lost after
// ReconnectTimeout.
func TestRFC2217Ser2net(t *testing.T) {
	tests := []struct {
		name    string
		restart bool
	}{
		{"ser2net restarted", true},
		{"ser2net gone for good", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ser2nettest.Binary(t) // fail or skip before starting anything
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			b, err := sim.Start(context.Background(), sim.Config{Name: "sim-rfc", LinkDir: t.TempDir()})
			require.NoError(t, err)
			defer b.Close()
			srv := ser2nettest.New(t, b.Link())
			defer srv.Stop()
			srv.Start()

			prof, ok := boards.LookupProfile("esp32-devkitc")
			require.True(t, ok)
			var logMu sync.Mutex
			var logs []string
			reconnect := 10 * time.Second
			if !tt.restart {
				reconnect = time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := Open(ctx, SessionConfig{Name: "sim-rfc", Port: "rfc2217://" + srv.Addr(), Profile: prof,
				CommandTimeout: time.Second, ReadyTimeout: 3 * time.Second, ReconnectTimeout: reconnect,
				Logf: func(format string, args ...any) {
					logMu.Lock()
					defer logMu.Unlock()
					logs = append(logs, fmt.Sprintf(format, args...))
				}})
			require.NoError(t, err, "ser2net output:\n%s", srv.Output())
			defer s.Close()
			logText := func() string {
				logMu.Lock()
				defer logMu.Unlock()
				return strings.Join(logs, "\n")
			}
			assert.Contains(t, logText(), "resetting with the protocol RESET verb instead")
			assert.Contains(t, logText(), "no answer from RFC 2217 server")
			assert.Contains(t, outputText(s.TakeOutput()), "reason=sw")
			info := s.Info()
			assert.Equal(t, sim.DefaultFirmware, info.Firmware)
			assert.NotEmpty(t, info.MAC)

			f, err := s.Call(ctx, protocol.VerbPing, protocol.Bytes("data", []byte("over tcp \xff\xfe")))
			require.NoError(t, err)
			assert.Equal(t, "over tcp \xff\xfe", f.String("data"))

			const group = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="
			want, err := reference.DeriveDeviceKey(group, "sn-007")
			require.NoError(t, err)
			f, err = s.Call(ctx, protocol.VerbDerive, protocol.String("group_key", group), protocol.String("reg_id", "sn-007"))
			require.NoError(t, err)
			assert.Equal(t, want, f.String("device_key"))

			srv.Stop()
			require.Eventually(t, func() bool { return strings.Contains(logText(), "vanished") }, 10*time.Second, 10*time.Millisecond,
				"the session notices ser2net is gone")
			if !tt.restart {
				require.Eventually(t, s.Lost, 10*time.Second, 10*time.Millisecond)
				_, err = s.Call(ctx, protocol.VerbPing)
				require.ErrorIs(t, err, ErrBoardLost)
				assert.Contains(t, err.Error(), srv.Addr())
				return
			}
			srv.Start()
			require.Eventually(t, func() bool { return s.Stats().Reopens == 1 }, 15*time.Second, 10*time.Millisecond,
				"no re-open; session log:\n%s\nser2net output:\n%s", logText(), srv.Output())
			// The first call reports the bounce (after HELLO confirmed the
			// same board), the next one works.
			_, err = s.Call(ctx, protocol.VerbPing, protocol.String("data", "x"))
			require.ErrorIs(t, err, ErrBoardReset)
			assert.Equal(t, info.MAC, s.Info().MAC)
			f, err = s.Call(ctx, protocol.VerbPing, protocol.String("data", "back"))
			require.NoError(t, err)
			assert.Equal(t, "back", f.String("data"))
			assert.False(t, s.Lost())
		})
	}
}
