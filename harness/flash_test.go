package harness

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFlashCommand(t *testing.T) {
	tests := []struct {
		tmpl, port, fw, board, want string
	}{
		{"idf.py -p {port} flash", "/dev/ttyUSB0", "", "b1", "idf.py -p /dev/ttyUSB0 flash"},
		{"esptool.py --port {port} write_flash 0x10000 {firmware}", "/dev/ttyACM0", "build/app.bin", "b", "esptool.py --port /dev/ttyACM0 write_flash 0x10000 build/app.bin"},
		{"echo {board}", "", "", "my board; rm -rf /", "echo 'my board; rm -rf /'"},
		{"echo {firmware}", "", "it's.bin", "", `echo 'it'\''s.bin'`},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, FlashCommand(tt.tmpl, tt.port, tt.fw, tt.board))
	}
}

func TestFlash(t *testing.T) {
	tests := []struct {
		name     string
		template string
		timeout  time.Duration
		status   int
		output   string
		errPart  string
	}{
		{name: "ok", template: "echo flashing {port}; echo done >&2", status: 0, output: "flashing /dev/pts/7\ndone\n"},
		{name: "fails", template: "sh -c 'echo flashing {port}; exit 3'", status: 3, output: "flashing /dev/pts/7\n", errPart: "exited with status 3"},
		{name: "timeout", template: "echo start; sleep 5", timeout: 200 * time.Millisecond, status: -1, output: "start\n", errPart: "timed out"},
		{name: "not found", template: "/nonexistent/esptool", status: 127, errPart: "status 127"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := FlashCommand(tt.template, "/dev/pts/7", "fw.bin", "b1")
			res, err := Flash(context.Background(), cmd, tt.timeout)
			require.NotNil(t, res)
			assert.Equal(t, cmd, res.Command)
			assert.Equal(t, tt.status, res.ExitStatus)
			if tt.output != "" {
				assert.Equal(t, tt.output, res.Output)
			}
			if tt.errPart == "" {
				require.NoError(t, err)
				assert.True(t, res.OK())
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.errPart)
			assert.Contains(t, res.Error, tt.errPart)
			assert.False(t, res.OK())
		})
	}
}
