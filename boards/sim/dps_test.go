package sim

import (
	"bytes"
	"errors"
	"net"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hiltest/hiltest/mockdps"
	"github.com/hiltest/hiltest/protocol"
)

// dpsBoard boots a board and points it at the mock DPS s.
func dpsBoard(t *testing.T, s *mockdps.Server, cfg Config) (*Board, *client) {
	t.Helper()
	b, c := boot(t, cfg)
	c.hello()
	c.putBlob("ca", s.CAPEM(), 1000)
	c.ok(protocol.VerbTLSCA, protocol.String("pem.blob", "ca"))
	host, port, err := net.SplitHostPort(s.Host())
	if err != nil {
		t.Fatal(err)
	}
	c.ok(protocol.VerbDPSConfig, protocol.String("host", host), protocol.String("port", port))
	c.ok(protocol.VerbTimeSet, protocol.Int("unix", time.Now().Unix()))
	return b, c
}

// register sends DPS.REGISTER and returns its answer and the PROGRESS events.
func register(t *testing.T, c *client, args ...protocol.Arg) (*protocol.Frame, []*protocol.Frame) {
	t.Helper()
	seq := c.send(protocol.VerbDPSRegister, args...)
	n := len(c.events)
	f, err := c.response(seq, 30*time.Second)
	if err != nil {
		if errors.Is(err, errDeadline) {
			_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 2)
		}
		t.Fatalf("DPS.REGISTER: %v (logs %q)", err, tail(c.logs, 5))
	}
	var prog []*protocol.Frame
	for _, e := range c.events[n:] {
		if e.Verb == protocol.EventProgress {
			prog = append(prog, e)
		}
	}
	return f, prog
}

func TestDPSRegisterMock(t *testing.T) {
	s := mockdps.NewTestServer(t, mockdps.Options{AssignDelay: 1500 * time.Millisecond, RetryAfter: 1})
	for _, d := range Dialects() {
		t.Run(d, func(t *testing.T) {
			_, c := dpsBoard(t, s, Config{Seed: 10, Dialect: d})
			before := len(s.Requests())
			se := time.Now().Unix() + 3600
			args := []protocol.Arg{protocol.String("id_scope", mockdps.DemoIDScope), protocol.String("reg_id", mockdps.DemoDevice1),
				protocol.String("key", mockdps.DemoDevice1PrimaryKey), protocol.Int("expiry", se)}
			want := c.result(c.ok(protocol.VerbDPSRequest, args...), "request")
			f, prog := register(t, c, args...)
			if f.Kind != protocol.KindOK {
				t.Fatalf("DPS.REGISTER: %s", f.Redacted())
			}
			if f.String("status") != "assigned" || f.String("hub") != mockdps.DemoHub1 || f.String("device_id") != mockdps.DemoDevice1 || f.String("op") == "" {
				t.Errorf("result %s", f.Redacted())
			}
			httpList := strings.Split(f.String("http"), ",")
			if len(httpList) < 2 || httpList[0] != "202" || httpList[len(httpList)-1] != "200" {
				t.Errorf("http = %q, want 202,...,200", f.String("http"))
			}
			if ra := strings.Split(f.String("retry_after"), ","); ra[0] != "1" {
				t.Errorf("retry_after = %q", f.String("retry_after"))
			}
			if len(prog) != len(httpList) {
				t.Errorf("%d PROGRESS events for %d exchanges", len(prog), len(httpList))
			}
			for i, p := range prog {
				if p.String("verb") != protocol.VerbDPSRegister || p.String("step") != strconv.Itoa(i+1) || p.String("status") == "" {
					t.Errorf("PROGRESS %d: %s", i, p.Redacted())
				}
			}
			reqs := s.Requests()[before:]
			if len(reqs) != len(httpList) {
				t.Fatalf("mock saw %d requests, board reports %d exchanges", len(reqs), len(httpList))
			}
			if !bytes.Equal(reqs[0].Raw, want) {
				t.Errorf("the mock received other bytes than DPS.REQUEST gave:\n got %q\nwant %q", reqs[0].Raw, want)
			}
			for _, r := range reqs[1:] {
				if r.Method != "GET" || !strings.Contains(r.RequestURI, "/operations/"+f.String("op")) {
					t.Errorf("poll %s %s", r.Method, r.RequestURI)
				}
				if r.RemoteAddr != reqs[0].RemoteAddr {
					t.Errorf("poll on a new connection (%s, register on %s): no keep-alive", r.RemoteAddr, reqs[0].RemoteAddr)
				}
			}
		})
	}
}

func TestDPSRegisterOutcomes(t *testing.T) {
	s := mockdps.NewTestServer(t, mockdps.Options{RetryAfter: mockdps.RetryImmediately})
	_, c := dpsBoard(t, s, Config{Seed: 11})
	t.Run("group key", func(t *testing.T) {
		f, _ := register(t, c, protocol.String("id_scope", mockdps.DemoIDScope), protocol.String("reg_id", "sim-group-dev-1"),
			protocol.String("group_key", mockdps.DemoGroupPrimaryKey), protocol.Int("ttl", 600),
			protocol.String("payload", `{"a":1}`))
		if f.String("status") != "assigned" || f.String("device_id") != "sim-group-dev-1" {
			t.Errorf("group registration: %s", f.Redacted())
		}
	})
	t.Run("wrong key is an OK with status failed", func(t *testing.T) {
		f, _ := register(t, c, protocol.String("id_scope", mockdps.DemoIDScope), protocol.String("reg_id", mockdps.DemoDevice1),
			protocol.String("key", mockdps.DemoDevice2PrimaryKey), protocol.Int("ttl", 600))
		if f.Kind != protocol.KindOK || f.String("status") != "failed" || f.String("http") != "401" || f.String("error_code") != "401002" {
			t.Errorf("wrong key: %s", f.Redacted())
		}
	})
	t.Run("disabled", func(t *testing.T) {
		f, _ := register(t, c, protocol.String("id_scope", mockdps.DemoIDScope), protocol.String("reg_id", mockdps.DemoDisabledDevice),
			protocol.String("key", mockdps.DemoDisabledDevicePrimaryKey), protocol.Int("ttl", 600))
		if f.Kind != protocol.KindOK || f.String("status") == "assigned" {
			t.Errorf("disabled: %s", f.Redacted())
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		other := mockdps.NewTestServer(t, mockdps.Options{})
		c.putBlob("ca2", other.CAPEM(), 1000)
		c.ok(protocol.VerbTLSCA, protocol.String("pem.blob", "ca2"))
		f, _ := register(t, c, protocol.String("id_scope", mockdps.DemoIDScope), protocol.String("reg_id", mockdps.DemoDevice1),
			protocol.String("key", mockdps.DemoDevice1PrimaryKey), protocol.Int("ttl", 600))
		if f.Kind != protocol.KindError || f.String("code") != string(protocol.CodeTLS) {
			t.Errorf("untrusted: %s", f.Redacted())
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		c.ok(protocol.VerbDPSConfig, protocol.Int("port", int64(port)))
		f, _ := register(t, c, protocol.String("id_scope", mockdps.DemoIDScope), protocol.String("reg_id", mockdps.DemoDevice1),
			protocol.String("key", mockdps.DemoDevice1PrimaryKey), protocol.Int("ttl", 600))
		if f.Kind != protocol.KindError || f.String("code") != string(protocol.CodeNetwork) {
			t.Errorf("refused: %s", f.Redacted())
		}
	})
}

func TestDPSRegisterTimeoutReportsAssigning(t *testing.T) {
	s := mockdps.NewTestServer(t, mockdps.Options{AssignDelay: time.Hour, RetryAfter: 1})
	_, c := dpsBoard(t, s, Config{Seed: 12})
	f, _ := register(t, c, protocol.String("id_scope", mockdps.DemoIDScope), protocol.String("reg_id", mockdps.DemoDevice1),
		protocol.String("key", mockdps.DemoDevice1PrimaryKey), protocol.Int("ttl", 600), protocol.Int("timeout", 2))
	if f.Kind != protocol.KindOK || f.String("status") != "assigning" || !strings.HasPrefix(f.String("http"), "202,") {
		t.Errorf("timeout: %s", f.Redacted())
	}
}

// TestDPSRegisterResumesTLS: a second registration in the same boot resumes
// the TLS session, also after the same trust anchor is loaded again; a new
// anchor starts afresh.
func TestDPSRegisterResumesTLS(t *testing.T) {
	s := mockdps.NewTestServer(t, mockdps.Options{RetryAfter: mockdps.RetryImmediately})
	_, c := dpsBoard(t, s, Config{Seed: 11})
	args := []protocol.Arg{protocol.String("id_scope", mockdps.DemoIDScope), protocol.String("reg_id", mockdps.DemoDevice1),
		protocol.String("key", mockdps.DemoDevice1PrimaryKey), protocol.Int("expiry", time.Now().Unix()+3600)}
	connects := func() []string {
		var out []string
		for _, l := range c.logs {
			if strings.Contains(l, "esp-tls: connected to") {
				out = append(out, l)
			}
		}
		return out
	}
	registerOK := func() {
		t.Helper()
		if f, _ := register(t, c, args...); f.String("status") != "assigned" {
			t.Fatalf("DPS.REGISTER: %s", f.Redacted())
		}
	}
	registerOK()
	registerOK()
	c.ok(protocol.VerbTLSCA, protocol.String("pem.blob", "ca"))
	registerOK()
	other := mockdps.NewTestServer(t, mockdps.Options{})
	c.putBlob("ca2", append(other.CAPEM(), s.CAPEM()...), 1000)
	c.ok(protocol.VerbTLSCA, protocol.String("pem.blob", "ca2"))
	registerOK()
	got := connects()
	want := []string{"new session", "session resumed", "session resumed", "new session"}
	if len(got) != len(want) {
		t.Fatalf("connections %q, want %d", got, len(want))
	}
	for i := range want {
		if !strings.HasSuffix(got[i], "("+want[i]+")") {
			t.Errorf("connection %d: %q, want %s", i+1, got[i], want[i])
		}
	}
}
