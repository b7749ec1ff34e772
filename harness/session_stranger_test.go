package harness

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/protocol"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.bug.st/serial"
	"go.uber.org/goleak"
)

// A session that opened its board by a bare /dev/pts/N path re-opens that
// path when the board vanishes; the number may by then belong to an
// unrelated program's pty (a stranger). Before anything but HELLO is
// written to the re-opened port, HELLO must confirm the board's identity;
// a stranger that answers with another MAC, or answers nothing, ends the
// session's use of the port: the board is lost, the port closed, and the
// stranger never sees another request.
func TestStrangerBehindReopenedPty(t *testing.T) {
	strangers := []struct {
		name  string
		setup func(p *peer)
		want  string
	}{
		{"another board", func(p *peer) { p.mac = "24:0A:C4:FF:FF:FF" }, "a different board answered"},
		{"silent program", func(p *peer) { p.silent = true }, "no board confirmed its identity"},
	}
	triggers := []struct {
		name string
		// run makes the board vanish and the session touch the port again;
		// it returns the first operation's error.
		run func(t *testing.T, s *Session, board *peer, swap func()) error
	}{
		{"call after unplug", func(t *testing.T, s *Session, board *peer, swap func()) error {
			board.unplug()
			swap()
			require.Eventually(t, func() bool { return s.Stats().Reopens == 1 }, 10*time.Second, 10*time.Millisecond)
			_, err := s.Call(context.Background(), protocol.VerbPing, protocol.String("data", "secret-state"))
			return err
		}},
		{"reset after unplug", func(t *testing.T, s *Session, board *peer, swap func()) error {
			board.unplug()
			swap()
			require.Eventually(t, func() bool { return s.Stats().Reopens == 1 }, 10*time.Second, 10*time.Millisecond)
			return s.Reset(context.Background())
		}},
		{"unplug during a call", func(t *testing.T, s *Session, board *peer, swap func()) error {
			board.setFaults(protocol.VerbPing, actUnplug)
			go func() {
				for board.plugged() {
					time.Sleep(5 * time.Millisecond)
				}
				swap()
			}()
			_, err := s.Call(context.Background(), protocol.VerbPing, protocol.String("data", "secret-state"))
			return err
		}},
	}
	for _, st := range strangers {
		for _, tr := range triggers {
			t.Run(st.name+"/"+tr.name, func(t *testing.T) {
				defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
				board := newPeer(t)
				defer board.close()
				board.mu.Lock()
				path := board.slave.Name() // /dev/pts/N, not a link
				board.mu.Unlock()

				// The kernel hands out the lowest free pty number, so the
				// stranger usually gets the board's; when another process
				// took it meanwhile, the opener stands in for the kernel
				// and sends the board's path to the stranger's pty.
				var redirect atomic.Value
				redirect.Store("")
				cfg := testConfig(board, boards.ResetNone)
				cfg.Port = path
				cfg.CommandTimeout, cfg.ReadyTimeout, cfg.ReconnectTimeout = 300*time.Millisecond, 500*time.Millisecond, 5*time.Second
				cfg.OpenPort = func(p string, baud int) (serial.Port, error) {
					if r := redirect.Load().(string); r != "" && p == path {
						p = r
					}
					return OpenPort(p, baud)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				s, err := Open(ctx, cfg)
				require.NoError(t, err)
				defer s.Close()
				require.Equal(t, board.mac, s.Info().MAC)

				var stranger *peer
				strangerReady := make(chan struct{})
				swap := func() {
					defer close(strangerReady)
					// Wait until the session let go of the old pty, so its
					// number is free.
					for i := 0; i < 200 && s.Path() != "" && func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.port != nil }(); i++ {
						time.Sleep(5 * time.Millisecond)
					}
					stranger = newPeerWith(t, st.setup)
					stranger.mu.Lock()
					got := stranger.slave.Name()
					stranger.mu.Unlock()
					if got != path {
						t.Logf("pty %s was taken by another process; the stranger is at %s", path, got)
						redirect.Store(got)
					} else {
						t.Logf("the stranger got %s, the board's old pty", got)
					}
				}
				err = tr.run(t, s, board, swap)
				<-strangerReady
				defer stranger.close()

				require.ErrorIs(t, err, ErrBoardLost)
				assert.Contains(t, err.Error(), st.want)
				assert.True(t, s.Lost())
				s.mu.Lock()
				port := s.port
				s.mu.Unlock()
				assert.Nil(t, port, "the stranger's port is closed")

				// Nothing more reaches the stranger, whatever is asked.
				_, err = s.Call(context.Background(), protocol.VerbPing, protocol.String("data", "again"))
				assert.ErrorIs(t, err, ErrBoardLost)
				assert.ErrorIs(t, s.Reset(context.Background()), ErrBoardLost)
				_, err = s.Call(context.Background(), protocol.VerbReset)
				assert.ErrorIs(t, err, ErrBoardLost)

				got := stranger.received()
				require.NotEmpty(t, got, "the session checks the identity with HELLO")
				for _, f := range got {
					assert.Equal(t, protocol.VerbHello, f.Verb, "the stranger received %s", f.Verb)
				}
				assert.LessOrEqual(t, len(got), 3, "HELLO attempts: the first and its retries")
			})
		}
	}
}
