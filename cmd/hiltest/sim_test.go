package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hiltest/hiltest/boards/sim"
	"github.com/hiltest/hiltest/protocol"
	"go.bug.st/serial"
)

func TestSimListBugs(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"sim", "--list-bugs"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, b := range sim.Bugs() {
		if !strings.Contains(out.String(), b.Name) {
			t.Errorf("--list-bugs lacks %s", b.Name)
		}
	}
}

func TestSimBadUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"sim", "--boards", "0"}, "--boards 0"},
		{[]string{"sim", "--bug", "nope"}, `unknown bug "nope"`},
		{[]string{"sim", "--boards", "2", "--bug", "3:sr-not-encoded"}, "board 3 does not exist"},
		{[]string{"sim", "--fault", "noise=9"}, "want a rate between 0 and 1"},
		{[]string{"sim", "--dialect", "python"}, `unknown dialect "python"`},
		{[]string{"sim", "--baud", "-5"}, "--baud -5"},
		{[]string{"sim", "extra"}, "unknown command"},
	} {
		var out, errb bytes.Buffer
		code := run(tt.args, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), tt.want) || strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q, want 2 and %q on one line", tt.args, code, errb.String(), tt.want)
		}
	}
}

func TestSimRunsBoards(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"sim", "--boards", "2", "--link-dir", dir, "--for", "3s", "--seed", "5",
			"--bug", "2:sr-not-encoded,missing-skn", "--dialect", "1:azure-sdk-for-c", "--fault", "2:noise=0.1", "--quiet"}, &out, &errb)
	}()
	link := filepath.Join(dir, "sim-1")
	for i := 0; i < 300; i++ {
		if _, err := os.Stat(link); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	p, err := serial.Open(link, &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatalf("open %s: %v", link, err)
	}
	defer p.Close()
	_ = p.SetReadTimeout(50 * time.Millisecond)
	r := protocol.NewReader(p, 0)
	deadline := time.Now().Add(5 * time.Second)
	var ready *protocol.Frame
	for ready == nil && time.Now().Before(deadline) {
		it, err := r.Next()
		if err != nil && err != protocol.ErrNoData {
			t.Fatal(err)
		}
		if it.Frame != nil && it.Frame.Verb == protocol.EventReady {
			ready = it.Frame
		}
	}
	if ready == nil {
		t.Fatal("no READY from sim-1")
	}
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "dialect=azure-sdk-for-c") || !strings.Contains(lines[1], "bugs=sr-not-encoded,missing-skn") ||
		!strings.Contains(lines[1], "faults=noise=0.1") || !strings.Contains(lines[0], "/dev/pts/") {
		t.Errorf("board lines:\n%s", out.String())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}

// TestCapProcs checks that "hiltest sim" lowers GOMAXPROCS to one P per
// board, never raises it, and leaves it alone when the environment sets it.
func TestCapProcs(t *testing.T) {
	was := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(was) })
	tests := []struct {
		env      string
		start, n int
		want     int
	}{
		{"", 4, 1, 1},
		{"", 4, 3, 3},
		{"", 2, 32, 2},
		{"4", 4, 1, 4},
	}
	for _, tt := range tests {
		t.Setenv("GOMAXPROCS", tt.env)
		runtime.GOMAXPROCS(tt.start)
		capProcs(tt.n)
		if got := runtime.GOMAXPROCS(0); got != tt.want {
			t.Errorf("GOMAXPROCS=%q, %d Ps, %d boards: capProcs left %d Ps; want %d", tt.env, tt.start, tt.n, got, tt.want)
		}
	}
}
