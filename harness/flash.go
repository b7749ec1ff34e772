package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// DefaultFlashTimeout bounds a flash command.
const DefaultFlashTimeout = 5 * time.Minute

// maxFlashOutput caps the flash output kept in reports (the tail is kept:
// that is where esptool and idf.py say what went wrong).
const maxFlashOutput = 16 << 10

// FlashResult is what a flash command did.
type FlashResult struct {
	Command    string `json:"command"`
	ExitStatus int    `json:"exit_status"` // -1 when it did not run to an exit (timeout, not startable)
	Output     string `json:"output"`
	DurationMS int64  `json:"duration_ms"`
	Error      string `json:"error,omitempty"`
}

// OK reports whether flashing succeeded.
func (f *FlashResult) OK() bool { return f != nil && f.Error == "" && f.ExitStatus == 0 }

// FlashCommand fills a flash command template: {port}, {firmware} and
// {board} are replaced by the values given (each shell-quoted).
func FlashCommand(template, port, firmware, board string) string {
	r := strings.NewReplacer("{port}", shellQuote(port), "{firmware}", shellQuote(firmware), "{board}", shellQuote(board))
	return r.Replace(template)
}

// shellQuote quotes s for sh when it holds anything but safe characters.
func shellQuote(s string) string {
	safe := s != ""
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./:=@+,", c)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// lockedBuffer is a bytes.Buffer safe for the two writers exec gives it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Flash runs command with sh -c, with a timeout (0 = DefaultFlashTimeout),
// and records its output (stdout and stderr interleaved) and exit status.
// The error is non-nil when the command failed, timed out or could not run.
func Flash(ctx context.Context, command string, timeout time.Duration) (*FlashResult, error) {
	if timeout <= 0 {
		timeout = DefaultFlashTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res := &FlashResult{Command: command, ExitStatus: -1}
	var out lockedBuffer
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 2 * time.Second // a child that keeps the pipes open does not hang us
	start := time.Now()
	err := cmd.Run()
	res.DurationMS = time.Since(start).Milliseconds()
	o := out.String()
	if len(o) > maxFlashOutput {
		o = "…" + o[len(o)-maxFlashOutput:]
	}
	res.Output = o
	if cmd.ProcessState != nil {
		res.ExitStatus = cmd.ProcessState.ExitCode()
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return res, nil
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		res.Error = fmt.Sprintf("flash command timed out after %s", timeout)
	case errors.As(err, &ee):
		res.Error = fmt.Sprintf("flash command exited with status %d", res.ExitStatus)
	default:
		res.Error = fmt.Sprintf("flash command: %v", err)
	}
	return res, errors.New(res.Error)
}
