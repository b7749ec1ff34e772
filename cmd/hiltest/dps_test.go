package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hiltest/hiltest/mockdps"
	"github.com/hiltest/hiltest/reference"
)

// dpsOutput is a bytes.Buffer safe for a writer goroutine and a reader.
type dpsOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *dpsOutput) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *dpsOutput) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls until the buffer matches re (bounded, so a broken server
// fails the test instead of hanging it).
func dpsWaitFor(t *testing.T, b *dpsOutput, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(b.String()); m != nil {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("output never matched %s:\n%s", re, b.String())
	return nil
}

func TestDPSServe(t *testing.T) {
	dir := t.TempDir()
	caPath, capPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "requests.jsonl")
	var out, errOut dpsOutput
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"dps", "serve", "--listen", "127.0.0.1:0", "--enrollments", filepath.Join("..", "..", "mockdps", "testdata", "enrollments.yaml"),
			"--ca-out", caPath, "--capture", capPath, "--explain", "--san", "dps.bench.local", "--retry-after", "0"}, &out, &errOut)
	}()
	m := dpsWaitFor(t, &out, regexp.MustCompile(`listening on (https://127\.0\.0\.1:\d+)\n`))
	url := m[1]
	if !strings.Contains(out.String(), "id scope: "+mockdps.DemoIDScope+"\n") {
		t.Errorf("output lacks the id scope:\n%s", out.String())
	}
	pem, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("--ca-out is not a PEM certificate")
	}
	cl, err := reference.NewClient(reference.ClientOptions{Endpoint: strings.TrimPrefix(url, "https://"), RootCAs: pool,
		Wait: func(context.Context, time.Duration) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	res, err := cl.Register(ctx, reference.RegisterParams{IDScope: mockdps.DemoIDScope, RegistrationID: mockdps.DemoDevice1, Key: mockdps.DemoDevice1PrimaryKey})
	if err != nil || res.RegistrationState.AssignedHub != mockdps.DemoHub1 {
		t.Fatalf("register: %v %+v", err, res)
	}
	// Signed with the group key: rejected, and the cause is printed.
	_, err = cl.Register(ctx, reference.RegisterParams{IDScope: mockdps.DemoIDScope, RegistrationID: "cli-dev", Key: mockdps.DemoGroupPrimaryKey})
	if err == nil {
		t.Fatalf("group key accepted")
	}
	dpsWaitFor(t, &errOut, regexp.MustCompile(`rejected PUT /0ne00DEMO01/registrations/cli-dev/register\S* -> 401: group-key-used`))

	// SIGTERM stops it cleanly (the command has registered for it).
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
	if !strings.Contains(out.String(), "stopped: 3 requests, 1 rejected") {
		t.Errorf("output:\n%s", out.String())
	}
	f, err := os.Open(capPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); n++ {
	}
	if n != 3 {
		t.Errorf("capture has %d lines, want 3", n)
	}
}

func TestDPSBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("idScope: 0ne00000A0A\ngroups:\n  - name: g1\n    primaryKey: nope!\n    hubs: [h]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"enrollments line error", []string{"dps", "serve", "--enrollments", bad}, bad + `:4: group "g1": primary key is not base64`},
		{"missing enrollments file", []string{"dps", "serve", "--enrollments", filepath.Join(dir, "none.yaml")}, "no such file"},
		{"bad listen", []string{"dps", "serve", "--listen", "nonsense"}, "--listen"},
		{"negative retry-after", []string{"dps", "serve", "--retry-after", "-1"}, "--retry-after"},
		{"unknown flag", []string{"dps", "serve", "--nope"}, "unknown flag"},
		{"bench devices", []string{"dps", "bench", "--devices", "0"}, "--devices 0"},
		{"bench duration", []string{"dps", "bench", "--duration", "1h"}, "--duration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(tc.args, &out, &errOut); code != 2 {
				t.Errorf("exit %d, want 2 (stderr %q)", code, errOut.String())
			}
			msg := errOut.String()
			if !strings.Contains(msg, tc.want) || strings.Count(msg, "\n") != 1 || strings.Contains(msg, "goroutine") {
				t.Errorf("stderr %q, want one line containing %q", msg, tc.want)
			}
		})
	}
}

func TestDPSBench(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"dps", "bench", "--devices", "4", "--conns", "2", "--duration", "200ms"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"4 devices, 2 connections", "flows/s", "\nmock ", "\nbare TLS ", "ceiling: ", "2.00 requests per flow"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
