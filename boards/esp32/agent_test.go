package esp32

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/hiltest/hiltest/internal/pollpty"
	"github.com/hiltest/hiltest/mockdps"
	"github.com/hiltest/hiltest/protocol"
	"github.com/hiltest/hiltest/reference"
)

// The published derive vector (MicrosoftDocs/azure-docs how-to-legacy-device-symm-key.md).
const (
	katGroupKey = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="
	katRegID    = "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"
	katScope    = "0neFEEDC0DE"
)

// requireToolchain fails (never skips) when the host build cannot be made.
func requireToolchain(t testing.TB) {
	t.Helper()
	var missing []string
	for _, tool := range []string{"gcc", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if _, err := os.Stat("/usr/include/mbedtls/ssl.h"); err != nil {
		missing = append(missing, "the mbedTLS headers")
	}
	if len(missing) > 0 {
		t.Fatalf("the host build of the ESP32 agent needs %s: install the Debian packages gcc make libmbedtls-dev "+
			"(apt-get install gcc make libmbedtls-dev)", strings.Join(missing, ", "))
	}
}

func runMake(t testing.TB, targets ...string) string {
	t.Helper()
	requireToolchain(t)
	cmd := exec.Command("make", append([]string{"-C", "host"}, targets...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -C host %s: %v\n%s", strings.Join(targets, " "), err, out)
	}
	return string(out)
}

// buildAgent builds the agent (incrementally) and returns the path of its
// AddressSanitizer/UBSan build, so that every integration test also checks
// the agent for memory errors; the plain build is compiled alongside.
func buildAgent(t testing.TB) string {
	t.Helper()
	runMake(t, "all", "agent-asan")
	p, err := filepath.Abs(filepath.Join("host", "build", "asan", "hiltest-agent"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCoreUnitTestsAndSanitizers(t *testing.T) {
	out := runMake(t, "test", "asan")
	re := regexp.MustCompile(`(?m)^(\d+) passed, (\d+) failed$`)
	m := re.FindAllStringSubmatch(out, -1)
	if len(m) != 2 {
		t.Fatalf("want two result lines (test and asan), got %d in:\n%s", len(m), out)
	}
	for _, r := range m {
		if n, _ := strconv.Atoi(r[1]); n == 0 || r[2] != "0" {
			t.Errorf("core tests: %s", r[0])
		}
	}
}

// startWithStdout starts cmd and returns the pipe of its stdout.
func startWithStdout(t testing.TB, cmd *exec.Cmd) io.ReadCloser {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	return out
}

// superviseAgent starts the agent command cmd, runs read on its stdout in a
// goroutine and, when the test ends, kills the agent, waits for read to return
// and logs the agent's stderr if the test failed.
func superviseAgent(t testing.TB, cmd *exec.Cmd, read func(stdout io.Reader)) {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout := startWithStdout(t, cmd)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		read(stdout)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-readerDone
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("agent stderr:\n%s", stderr.String())
		}
	})
}

// agent is a running host agent and a protocol session to it over its pty.
type agent struct {
	t      testing.TB
	link   string
	port   serial.Port
	rd     *protocol.Reader
	enc    *protocol.Encoder
	seq    uint16
	events []*protocol.Frame
	logs   []string
}

func startAgent(t testing.TB, args ...string) *agent {
	t.Helper()
	bin := buildAgent(t)
	link := filepath.Join(t.TempDir(), "board")
	cmd := exec.Command(bin, append([]string{"--link", link}, args...)...)
	lines := make(chan string, 4)
	superviseAgent(t, cmd, func(stdout io.Reader) {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	})
	var ptyLine string
	select {
	case ptyLine = <-lines:
	case <-time.After(10 * time.Second):
		t.Fatal("the agent printed no PTY line within 10s")
	}
	if !regexp.MustCompile(`^PTY /dev/pts/\d+$`).MatchString(ptyLine) {
		t.Fatalf("first stdout line = %q, want \"PTY /dev/pts/N\"", ptyLine)
	}
	if target, err := os.Readlink(link); err != nil || target != strings.TrimPrefix(ptyLine, "PTY ") {
		t.Fatalf("link %s -> %q (%v), want %s", link, target, err, strings.TrimPrefix(ptyLine, "PTY "))
	}
	port, err := serial.Open(link, &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatalf("open %s: %v", link, err)
	}
	t.Cleanup(func() { _ = port.Close() })
	if err := port.SetReadTimeout(50 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	return &agent{t: t, link: link, port: port, rd: protocol.NewReader(port, 0), enc: protocol.NewEncoder(port, 0)}
}

// next returns the next frame before the deadline, keeping logs.
func (a *agent) next(deadline time.Time) (*protocol.Frame, error) {
	for time.Now().Before(deadline) {
		it, err := a.rd.Next()
		if errors.Is(err, protocol.ErrNoData) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", a.link, err)
		}
		switch {
		case it.Frame != nil:
			return it.Frame, nil
		case it.Log != nil:
			a.logs = append(a.logs, string(it.Log))
		case it.Err != nil:
			return nil, fmt.Errorf("bad frame from the agent: %w", it.Err)
		}
	}
	return nil, errors.New("no frame before the deadline")
}

// waitEvent waits for an event named name.
func (a *agent) waitEvent(name string, timeout time.Duration) *protocol.Frame {
	a.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		f, err := a.next(deadline)
		if err != nil {
			a.t.Fatalf("waiting for EVT %s: %v (device output: %q)", name, err, a.logs)
		}
		if f.Kind == protocol.KindEvent && f.Verb == name {
			return f
		}
	}
}

// call sends a request and returns the OK or ERR answer with its seq.
func (a *agent) call(timeout time.Duration, verb string, args ...protocol.Arg) *protocol.Frame {
	a.t.Helper()
	a.seq++
	if a.seq == 0 {
		a.seq = 1
	}
	if err := a.enc.Encode(protocol.NewRequest(a.seq, verb, args...)); err != nil {
		a.t.Fatalf("send %s: %v", verb, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		f, err := a.next(deadline)
		if err != nil {
			a.t.Fatalf("%s: %v", verb, err)
		}
		if f.Kind == protocol.KindEvent {
			a.events = append(a.events, f)
			continue
		}
		if f.Seq != a.seq {
			// PROTOCOL.md §1: a response to another seq is discarded.
			a.t.Logf("%s: discarding an answer with seq %d (waiting for %d): %s", verb, f.Seq, a.seq, f.Redacted())
			continue
		}
		if f.Verb != verb {
			a.t.Fatalf("%s: answer for verb %s", verb, f.Verb)
		}
		return f
	}
}

// ok is call that fails the test on ERR.
func (a *agent) ok(verb string, args ...protocol.Arg) *protocol.Frame {
	a.t.Helper()
	f := a.call(5*time.Second, verb, args...)
	if err := f.Err(); err != nil {
		a.t.Fatalf("%s: %v (%s)", verb, err, f.Redacted())
	}
	return f
}

// result returns result key, fetching it with BLOB.GET when the board put it in a blob.
func (a *agent) result(f *protocol.Frame, key string) []byte {
	a.t.Helper()
	if v, ok := f.Get(key); ok {
		return v
	}
	name := f.String(key + ".blob")
	if name == "" {
		a.t.Fatalf("%s: no %s and no %s.blob in %s", f.Verb, key, key, f.Redacted())
	}
	var out []byte
	for {
		g := a.ok(protocol.VerbBlobGet, protocol.String("name", name), protocol.Int("off", int64(len(out))))
		data, _ := g.Get("data")
		total, err := g.Int("total")
		if err != nil {
			a.t.Fatal(err)
		}
		out = append(out, data...)
		if int64(len(out)) >= total || len(data) == 0 {
			return out
		}
	}
}

// putBlob writes data to blob name in pieces that fit a frame.
func (a *agent) putBlob(name string, data []byte) {
	a.t.Helper()
	const piece = 1000 // at most 3000 encoded bytes: fits a 4096-byte frame
	for off := 0; off == 0 || off < len(data); off += piece {
		end := min(off+piece, len(data))
		f := a.ok(protocol.VerbBlobPut, protocol.String("name", name), protocol.Int("off", int64(off)),
			protocol.Bytes("data", data[off:end]))
		if f.String("len") != strconv.Itoa(end) {
			a.t.Fatalf("BLOB.PUT %s at %d: len = %s, want %d", name, off, f.String("len"), end)
		}
	}
}

func TestHostAgentHandshakeAndCrypto(t *testing.T) {
	for _, d := range reference.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			a := startAgent(t, "--dialect", string(d), "--name", "t-"+string(d))
			ready := a.waitEvent(protocol.EventReady, 5*time.Second)
			if ready.String("reason") != "poweron" || ready.String("proto") != "1" || ready.Seq != 0 {
				t.Errorf("READY = %s", ready.Redacted())
			}
			hello := a.ok(protocol.VerbHello, protocol.Int("proto", 1), protocol.Int("max", 4096))
			want := map[string]string{"proto": "1", "fw": "hiltest-agent", "board": "host", "chip": "host",
				"dialect": string(d), "max": "4096", "blob_max": "8192"}
			for k, v := range want {
				if got := hello.String(k); got != v {
					t.Errorf("HELLO %s = %q, want %q", k, got, v)
				}
			}
			if !regexp.MustCompile(`^([0-9A-F]{2}:){5}[0-9A-F]{2}$`).MatchString(hello.String("mac")) {
				t.Errorf("HELLO mac = %q", hello.String("mac"))
			}
			caps := strings.Split(hello.String("caps"), ",")
			for _, c := range []string{protocol.CapPing, protocol.CapReset, protocol.CapTime, protocol.CapDerive,
				protocol.CapSAS, protocol.CapDPSRequest, protocol.CapDPSRegister, protocol.CapTLSCA,
				protocol.CapNetWiFi, protocol.CapDPSConfig, protocol.CapBlob} {
				if !contains(caps, c) {
					t.Errorf("HELLO caps %v lacks %s", caps, c)
				}
			}

			for _, reg := range []string{katRegID, "dev-1", "A.b_c:d-", "x"} {
				wantKey, err := reference.DeriveDeviceKey(katGroupKey, reg)
				if err != nil {
					t.Fatal(err)
				}
				f := a.ok(protocol.VerbDerive, protocol.String("group_key", katGroupKey), protocol.String("reg_id", reg))
				if got := f.String("device_key"); got != wantKey {
					t.Errorf("DERIVE %s = %q, want %q", reg, got, wantKey)
				}
				if reg == katRegID && wantKey != "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=" {
					t.Errorf("reference derive KAT = %q", wantKey)
				}
			}
			if f := a.call(time.Second, protocol.VerbDerive, protocol.String("group_key", "not base64"),
				protocol.String("reg_id", "x")); f.String("code") != "BAD_ARG" || f.String("arg") != "group_key" {
				t.Errorf("DERIVE with a bad key: %s", f.Redacted())
			}

			deviceKey, _ := reference.DeriveDeviceKey(katGroupKey, katRegID)
			sasCases := []struct {
				name string
				args []protocol.Arg
				p    reference.SASParams
			}{
				{"dps", []protocol.Arg{protocol.String("id_scope", katScope), protocol.String("reg_id", katRegID),
					protocol.String("key", deviceKey), protocol.Int("expiry", 1578941692)},
					reference.SASParams{Dialect: d, IDScope: katScope, RegistrationID: katRegID, Key: deviceKey,
						Expiry: 1578941692, KeyName: d.DefaultKeyName()}},
				{"no skn", []protocol.Arg{protocol.String("id_scope", "0ne00DEMO01"), protocol.String("reg_id", "dev.1_a:b"),
					protocol.String("key", deviceKey), protocol.Int("expiry", 2000000000), protocol.String("policy", "")},
					reference.SASParams{Dialect: d, IDScope: "0ne00DEMO01", RegistrationID: "dev.1_a:b", Key: deviceKey,
						Expiry: 2000000000}},
				{"resource", []protocol.Arg{protocol.String("resource", "hub.azure-devices.net/devices/d~(1)*!"),
					protocol.String("key", katGroupKey), protocol.Int("expiry", 1663119026), protocol.String("policy", "iothubowner")},
					reference.SASParams{Dialect: d, Resource: "hub.azure-devices.net/devices/d~(1)*!", Key: katGroupKey,
						Expiry: 1663119026, KeyName: "iothubowner"}},
			}
			for _, c := range sasCases {
				wantSAS, err := reference.NewSAS(c.p)
				if err != nil {
					t.Fatalf("%s: reference: %v", c.name, err)
				}
				f := a.ok(protocol.VerbSAS, c.args...)
				got := map[string]string{"sr": f.String("sr"), "sts": f.String("sts"), "sig": f.String("sig"),
					"se": f.String("se"), "token": string(a.result(f, "token"))}
				exp := map[string]string{"sr": wantSAS.EncodedResource, "sts": wantSAS.StringToSign,
					"sig": wantSAS.Signature, "se": strconv.FormatInt(wantSAS.Expiry, 10), "token": wantSAS.Token}
				for k := range exp {
					if got[k] != exp[k] {
						t.Errorf("SAS %s: %s = %q, want %q", c.name, k, got[k], exp[k])
					}
				}
			}

			// DPS.REQUEST: the exact register request bytes, without a payload,
			// with a small one inline, and with one larger than a frame that
			// goes in through BLOB.PUT (and the request comes back as a blob).
			var big strings.Builder
			big.WriteString(`{"firmware":"1.2.3","notes":[`)
			for i := 0; i < 150; i++ {
				if i > 0 {
					big.WriteString(",")
				}
				fmt.Fprintf(&big, `"line %d: caf\u00e9 & <tags> %%20"`, i)
			}
			big.WriteString(`]}`)
			wantSAS, _ := reference.NewSAS(reference.SASParams{Dialect: d, IDScope: katScope, RegistrationID: katRegID,
				Key: deviceKey, Expiry: 1578941692, KeyName: d.DefaultKeyName()})
			for _, payload := range []string{"", `{"firmware":"1.2.3","list":[1,2]}`, big.String()} {
				args := []protocol.Arg{protocol.String("id_scope", katScope), protocol.String("reg_id", katRegID),
					protocol.String("group_key", katGroupKey), protocol.Int("expiry", 1578941692)}
				p := reference.RequestParams{IDScope: katScope, RegistrationID: katRegID, Token: wantSAS.Token}
				if payload != "" {
					p.Payload = []byte(payload)
					if len(payload) > 1000 {
						a.putBlob("payload", []byte(payload))
						args = append(args, protocol.String("payload.blob", "payload"))
					} else {
						args = append(args, protocol.String("payload", payload))
					}
				}
				wantReq, err := reference.RegisterRequestBytes(p)
				if err != nil {
					t.Fatal(err)
				}
				f := a.ok(protocol.VerbDPSRequest, args...)
				if len(payload) > 1000 && !f.Has("request.blob") {
					t.Errorf("DPS.REQUEST with a %d-byte payload answered inline: %s", len(payload), f.Redacted())
				}
				if got := a.result(f, "request"); !bytes.Equal(got, wantReq) {
					t.Errorf("DPS.REQUEST (payload of %d bytes):\n got %q\nwant %q", len(payload), got, wantReq)
				}
			}
		})
	}
}

func TestHostAgentRegistersWithMockDPS(t *testing.T) {
	srv := mockdps.NewTestServer(t, mockdps.Options{RetryAfter: mockdps.RetryImmediately, AssignDelay: 50 * time.Millisecond})
	host, portStr, err := net.SplitHostPort(srv.Host())
	if err != nil {
		t.Fatal(err)
	}
	a := startAgent(t)
	a.waitEvent(protocol.EventReady, 5*time.Second)
	a.ok(protocol.VerbHello, protocol.Int("proto", 1), protocol.Int("max", 4096))
	now := time.Now().Unix()
	a.ok(protocol.VerbTimeSet, protocol.Int("unix", now))

	// The CA goes in through a blob, in two pieces.
	ca := srv.CAPEM()
	half := len(ca) / 2
	a.ok(protocol.VerbBlobPut, protocol.String("name", "ca"), protocol.Int("off", 0), protocol.Bytes("data", ca[:half]))
	put := a.ok(protocol.VerbBlobPut, protocol.String("name", "ca"), protocol.Int("off", int64(half)),
		protocol.Bytes("data", ca[half:]), protocol.Int("total", int64(len(ca))))
	if put.String("len") != strconv.Itoa(len(ca)) {
		t.Fatalf("BLOB.PUT len = %s, want %d", put.String("len"), len(ca))
	}
	if f := a.ok(protocol.VerbTLSCA, protocol.String("pem.blob", "ca")); f.String("certs") != "1" {
		t.Fatalf("TLS.CA certs = %q", f.String("certs"))
	}
	cfg := a.ok(protocol.VerbDPSConfig, protocol.String("host", host), protocol.String("port", portStr))
	if cfg.String("host") != host || cfg.String("port") != portStr {
		t.Fatalf("DPS.CONFIG = %s", cfg.Redacted())
	}

	expiry := now + 3600
	groupMember := "esp32-host-agent-1"
	cases := []struct {
		name     string
		regID    string
		keyArg   protocol.Arg
		key      string // device key for the reference request
		status   string
		hubs     []string
		device   string
		http     string
		errCode  string
		checkRaw bool
	}{
		{"group member", groupMember, protocol.String("group_key", mockdps.DemoGroupPrimaryKey), "",
			"assigned", []string{mockdps.DemoHub1, mockdps.DemoHub2}, groupMember, "", "", true},
		{"individual", mockdps.DemoDevice1, protocol.String("key", mockdps.DemoDevice1PrimaryKey), mockdps.DemoDevice1PrimaryKey,
			"assigned", []string{mockdps.DemoHub1}, mockdps.DemoDevice1, "", "", true},
		{"wrong key", mockdps.DemoDevice1, protocol.String("key", mockdps.DemoDevice2PrimaryKey), "",
			"failed", nil, "", "401", "401002", false},
		{"disabled", mockdps.DemoDisabledDevice, protocol.String("key", mockdps.DemoDisabledDevicePrimaryKey), "",
			"disabled", nil, "", "", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(srv.Requests())
			f := a.call(30*time.Second, protocol.VerbDPSRegister, protocol.String("id_scope", srv.IDScope()),
				protocol.String("reg_id", c.regID), c.keyArg, protocol.Int("expiry", expiry), protocol.Int("timeout", 20))
			if err := f.Err(); err != nil {
				t.Fatalf("DPS.REGISTER: %v (%s)", err, f.Redacted())
			}
			if got := f.String("status"); got != c.status {
				t.Fatalf("status = %q, want %q (%s; diagnoses %v)", got, c.status, f.Redacted(), srv.Diagnoses())
			}
			if c.hubs != nil && !contains(c.hubs, f.String("hub")) {
				t.Errorf("hub = %q, want one of %v", f.String("hub"), c.hubs)
			}
			if f.String("device_id") != c.device {
				t.Errorf("device_id = %q, want %q", f.String("device_id"), c.device)
			}
			if c.http != "" && f.String("http") != c.http {
				t.Errorf("http = %q, want %q", f.String("http"), c.http)
			}
			if c.status == "assigned" && (f.String("op") == "" || !strings.HasSuffix(f.String("http"), "200")) {
				t.Errorf("op = %q, http = %q", f.String("op"), f.String("http"))
			}
			if f.String("error_code") != c.errCode {
				t.Errorf("error_code = %q, want %q", f.String("error_code"), c.errCode)
			}
			if !c.checkRaw {
				return
			}
			// The register request as the mock DPS received it is the reference's, byte for byte.
			key := c.key
			if key == "" {
				key, _ = reference.DeriveDeviceKey(mockdps.DemoGroupPrimaryKey, c.regID)
			}
			sas, err := reference.NewSAS(reference.SASParams{IDScope: srv.IDScope(), RegistrationID: c.regID, Key: key,
				Expiry: expiry, KeyName: reference.DialectDefault.DefaultKeyName()})
			if err != nil {
				t.Fatal(err)
			}
			want, err := reference.RegisterRequestBytes(reference.RequestParams{Endpoint: srv.Host(), IDScope: srv.IDScope(),
				RegistrationID: c.regID, Token: sas.Token})
			if err != nil {
				t.Fatal(err)
			}
			reqs := srv.Requests()[before:]
			if len(reqs) == 0 {
				t.Fatal("the mock DPS saw no request")
			}
			if !bytes.Equal(reqs[0].Raw, want) {
				t.Errorf("register request as received:\n got %q\nwant %q", reqs[0].Raw, want)
			}
		})
	}

	// An anchor that did not sign the server's certificate: ERR TLS.
	other := mockdps.NewTestServer(t, mockdps.Options{})
	a.ok(protocol.VerbTLSCA, protocol.Bytes("pem", other.CAPEM()))
	f := a.call(30*time.Second, protocol.VerbDPSRegister, protocol.String("id_scope", srv.IDScope()),
		protocol.String("reg_id", mockdps.DemoDevice1), protocol.String("key", mockdps.DemoDevice1PrimaryKey),
		protocol.Int("expiry", expiry))
	if f.String("code") != string(protocol.CodeTLS) || !strings.Contains(f.String("msg"), "trusted CA") {
		t.Errorf("DPS.REGISTER with the wrong anchor: %s, want ERR code=TLS naming the untrusted certificate", f.Redacted())
	}
}

func TestHostAgentHonoursRetryAfter(t *testing.T) {
	srv := mockdps.NewTestServer(t, mockdps.Options{RetryAfter: 1, AssignDelay: 1500 * time.Millisecond})
	host, port, err := net.SplitHostPort(srv.Host())
	if err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, "--dialect", "azure-iot-sdk-c")
	a.waitEvent(protocol.EventReady, 5*time.Second)
	a.ok(protocol.VerbTimeSet, protocol.Int("unix", time.Now().Unix()))
	a.ok(protocol.VerbTLSCA, protocol.Bytes("pem", srv.CAPEM()))
	a.ok(protocol.VerbDPSConfig, protocol.String("host", host), protocol.String("port", port))
	f := a.call(30*time.Second, protocol.VerbDPSRegister, protocol.String("id_scope", srv.IDScope()),
		protocol.String("reg_id", "esp32-host-agent-2"), protocol.String("group_key", mockdps.DemoGroupPrimaryKey),
		protocol.Int("ttl", 600), protocol.Int("timeout", 20))
	if err := f.Err(); err != nil {
		t.Fatalf("DPS.REGISTER: %v", err)
	}
	httpSeq := strings.Split(f.String("http"), ",")
	if f.String("status") != "assigned" || len(httpSeq) < 2 || httpSeq[0] != "202" || httpSeq[len(httpSeq)-1] != "200" {
		t.Fatalf("DPS.REGISTER = %s, want assigned after 202 ... 200", f.Redacted())
	}
	for _, ra := range strings.Split(f.String("retry_after"), ",") {
		if ra != "1" {
			t.Errorf("retry_after = %q, want every value 1", f.String("retry_after"))
		}
	}
	// One PROGRESS event per exchange.
	progress := 0
	for _, e := range a.events {
		if e.Verb == protocol.EventProgress && e.String("verb") == protocol.VerbDPSRegister {
			progress++
		}
	}
	if progress != len(httpSeq) {
		t.Errorf("%d PROGRESS events for %d exchanges", progress, len(httpSeq))
	}
	// The polls came no sooner than the Retry-After the mock sent.
	var last time.Time
	for _, r := range srv.Requests() {
		if !last.IsZero() && r.Time.Sub(last) < 900*time.Millisecond {
			t.Errorf("request %s %s came %v after the previous one, Retry-After was 1s", r.Method, r.RequestURI, r.Time.Sub(last))
		}
		last = r.Time
	}
}

func TestHostAgentResets(t *testing.T) {
	a := startAgent(t)
	a.waitEvent(protocol.EventReady, 5*time.Second)
	a.ok(protocol.VerbTimeSet, protocol.Int("unix", 1700000000))
	a.ok(protocol.VerbBlobPut, protocol.String("name", "x"), protocol.Int("off", 0), protocol.String("data", "kept?"))

	// RESET: OK, then READY reason=sw; blobs and the clock are lost.
	a.ok(protocol.VerbReset)
	if r := a.waitEvent(protocol.EventReady, 5*time.Second); r.String("reason") != "sw" {
		t.Errorf("after RESET: %s", r.Redacted())
	}
	if f := a.call(time.Second, protocol.VerbBlobGet, protocol.String("name", "x")); f.String("code") != "BAD_ARG" {
		t.Errorf("blob survived RESET: %s", f.Redacted())
	}
	// The RTC keeps the time across a software reset, but the clock counts as not set.
	if f := a.ok(protocol.VerbTimeGet); f.String("set") != "0" || !strings.HasPrefix(f.String("unix"), "17") {
		t.Errorf("TIME.GET after RESET: %s, want the time kept and set=0", f.Redacted())
	}

	ctl, err := net.Dial("unix", a.link+".ctl")
	if err != nil {
		t.Fatalf("control socket: %v", err)
	}
	t.Cleanup(func() { _ = ctl.Close() })
	ctlReply := bufio.NewReader(ctl)
	send := func(lines ...string) {
		t.Helper()
		for _, l := range lines {
			if _, err := fmt.Fprintf(ctl, "%s\n", l); err != nil {
				t.Fatal(err)
			}
			if err := ctl.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if r, err := ctlReply.ReadString('\n'); err != nil || r != "ok\n" {
				t.Fatalf("control %q: reply %q, %v", l, r, err)
			}
		}
	}

	// Hard reset (esptool HardReset: RTS asserted then released): READY reason=hw.
	send("rts 1", "rts 0")
	if r := a.waitEvent(protocol.EventReady, 5*time.Second); r.String("reason") != "hw" {
		t.Errorf("after the hard reset: %s", r.Redacted())
	}
	// An EN reset restarts the clock near 0, as on an ESP32 without SNTP.
	if f := a.ok(protocol.VerbTimeGet); f.String("set") != "0" || len(f.String("unix")) > 4 {
		t.Errorf("TIME.GET after the hard reset: %s, want a clock near 0", f.Redacted())
	}

	// esptool ClassicReset: into the ROM download mode, no READY, no answers.
	a.logs = nil
	send("dtr 0", "rts 1")
	time.Sleep(100 * time.Millisecond)
	send("dtr 1", "rts 0")
	time.Sleep(50 * time.Millisecond)
	send("dtr 0")
	if err := a.enc.Encode(protocol.NewRequest(999, protocol.VerbPing)); err != nil {
		t.Fatal(err)
	}
	if f, err := a.next(time.Now().Add(500 * time.Millisecond)); err == nil {
		t.Errorf("a board in download mode sent %s", f.Redacted())
	}
	if !containsSubstring(a.logs, "waiting for download") {
		t.Errorf("no download-mode banner in %q", a.logs)
	}

	// And back to a normal boot.
	send("rts 1", "rts 0")
	if r := a.waitEvent(protocol.EventReady, 5*time.Second); r.String("reason") != "hw" {
		t.Errorf("after leaving download mode: %s", r.Redacted())
	}
	a.ok(protocol.VerbPing, protocol.String("data", "back"))
}

// TestHostAgentOnGivenPort serves the agent on an existing terminal (--port)
// and talks to it from the other end of a pty pair.
func TestHostAgentOnGivenPort(t *testing.T) {
	bin := buildAgent(t)
	master, slave, err := pollpty.Open()
	if err != nil {
		t.Fatalf("pty: %v", err)
	}
	t.Cleanup(func() { _ = master.Close(); _ = slave.Close() })
	cmd := exec.Command(bin, "--port", slave.Name(), "--name", "given-port", "--mac", "02:AB:CD:EF:01:23")
	done := make(chan string, 1)
	superviseAgent(t, cmd, func(stdout io.Reader) {
		rd := bufio.NewReader(stdout)
		line, _ := rd.ReadString('\n')
		done <- line
		_, _ = rd.WriteTo(io.Discard)
	})
	select {
	case line := <-done:
		if line != "PTY "+slave.Name()+"\n" {
			t.Fatalf("stdout line %q, want %q", line, "PTY "+slave.Name())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no PTY line within 10s")
	}
	if err := master.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	a := &agent{t: t, link: slave.Name(), rd: protocol.NewReader(master, 0), enc: protocol.NewEncoder(master, 0)}
	a.waitEvent(protocol.EventReady, 5*time.Second)
	hello := a.ok(protocol.VerbHello, protocol.Int("proto", 1))
	if hello.String("mac") != "02:AB:CD:EF:01:23" {
		t.Errorf("HELLO mac = %q", hello.String("mac"))
	}
	if f := a.ok(protocol.VerbPing, protocol.Bytes("data", []byte("over --port \x00\xff"))); f.String("data") != "over --port \x00\xff" {
		t.Errorf("PING = %s", f.Redacted())
	}
}

// BenchmarkHostAgentPing measures request/answer round trips over the pty
// (the ASan build of the agent, so an upper bound on the cost).
func BenchmarkHostAgentPing(b *testing.B) {
	a := startAgent(b)
	a.waitEvent(protocol.EventReady, 5*time.Second)
	data := protocol.Bytes("data", bytes.Repeat([]byte("0123456789abcdef"), 16))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if f := a.call(5*time.Second, protocol.VerbPing, data); f.Kind != protocol.KindOK {
			b.Fatalf("PING: %s", f.Redacted())
		}
	}
}

// BenchmarkHostAgentSAS measures SAS token builds (HMAC in mbedTLS) over the pty.
func BenchmarkHostAgentSAS(b *testing.B) {
	a := startAgent(b)
	a.waitEvent(protocol.EventReady, 5*time.Second)
	args := []protocol.Arg{protocol.String("id_scope", katScope), protocol.String("reg_id", katRegID),
		protocol.String("key", "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc="), protocol.Int("expiry", 1578941692)}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if f := a.call(5*time.Second, protocol.VerbSAS, args...); f.Kind != protocol.KindOK {
			b.Fatalf("SAS: %s", f.Redacted())
		}
	}
}

// TestHostAgentExitsWithItsLauncher: when the reader of its stdout pipe goes
// away, the agent exits instead of lingering.
func TestHostAgentExitsWithItsLauncher(t *testing.T) {
	bin := buildAgent(t)
	cmd := exec.Command(bin)
	out := startWithStdout(t, cmd)
	exited := make(chan error, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		if !strings.HasPrefix(line, "PTY /dev/pts/") {
			t.Errorf("stdout line %q", line)
		}
		_ = out.Close()
		exited <- cmd.Wait()
	}()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("agent exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		t.Fatal("the agent kept running after its stdout reader closed")
	}
}

// TestHostAgentAgreesWithGoDecoder sends valid and mutated PING frames (printable
// ASCII mutations, the CRC fixed up half of the time) and checks that the C agent
// accepts exactly what protocol.Decode accepts, rejects the rest with the same
// code, and echoes the bytes of every valid PING.
func TestHostAgentAgreesWithGoDecoder(t *testing.T) {
	a := startAgent(t)
	a.waitEvent(protocol.EventReady, 5*time.Second)
	rng := rand.New(rand.NewPCG(6, 7))
	outcomes := map[string]int{}
	defer func() { t.Logf("answers by code: %v", outcomes) }()
	for i := 0; i < 500; i++ {
		data := make([]byte, rng.IntN(48))
		for j := range data {
			data[j] = byte(rng.IntN(256))
		}
		seq := uint16(i + 1)
		line, err := protocol.Encode(protocol.NewRequest(seq, protocol.VerbPing, protocol.Bytes("data", data)), 0)
		if err != nil {
			t.Fatal(err)
		}
		line = line[:len(line)-1]
		if i%5 != 0 {
			line = mutate(rng, line)
			if rng.IntN(2) == 0 {
				fixCRC(line)
			}
		}
		if _, err := a.port.Write(append(append([]byte(nil), line...), '\n')); err != nil {
			t.Fatal(err)
		}
		var got *protocol.Frame
		for got == nil {
			f, err := a.next(time.Now().Add(5 * time.Second))
			if err != nil {
				t.Fatalf("frame %q: %v", line, err)
			}
			if f.Kind.IsResponse() {
				got = f
			}
		}
		outcomes[got.String("code")]++
		want, decErr := protocol.Decode(line)
		var fe *protocol.FrameError
		switch {
		case errors.As(decErr, &fe):
			if got.Kind != protocol.KindError || got.String("code") != string(fe.Code) {
				t.Errorf("frame %q: Go decoder says %s (%s), agent answered %s", line, fe.Code, fe.Reason, got.Redacted())
			}
		case decErr != nil:
			t.Fatalf("frame %q: %v", line, decErr)
		case want.Kind != protocol.KindRequest:
			if got.String("code") != string(protocol.CodeBadFrame) {
				t.Errorf("frame %q (a %s frame): agent answered %s, want BAD_FRAME", line, want.Kind, got.Redacted())
			}
		case want.Verb != protocol.VerbPing:
			if got.String("code") != string(protocol.CodeUnknownVerb) {
				t.Errorf("frame %q (verb %s): agent answered %s, want UNKNOWN_VERB", line, want.Verb, got.Redacted())
			}
		case len(want.Args) != 1 || want.Args[0].Key != "data":
			if got.String("code") != string(protocol.CodeBadArg) {
				t.Errorf("frame %q: agent answered %s, want BAD_ARG", line, got.Redacted())
			}
		default:
			wantData, _ := want.Get("data")
			gotData, _ := got.Get("data")
			if got.Kind != protocol.KindOK || got.Seq != want.Seq || !bytes.Equal(gotData, wantData) {
				t.Errorf("frame %q: agent answered %s, want OK %d data=%q", line, got.Redacted(), want.Seq, wantData)
			}
		}
	}
}

// mutate changes one printable byte after the marker: replace, delete, insert
// or duplicate.
func mutate(rng *rand.Rand, line []byte) []byte {
	out := append([]byte(nil), line...)
	at := len(protocol.Marker) + rng.IntN(len(out)-len(protocol.Marker))
	printable := byte(0x20 + rng.IntN(0x7f-0x20))
	switch rng.IntN(4) {
	case 0:
		out[at] = printable
	case 1:
		out = append(out[:at], out[at+1:]...)
	case 2:
		out = append(out[:at], append([]byte{printable}, out[at:]...)...)
	default:
		out = append(out[:at], append([]byte{out[at]}, out[at:]...)...)
	}
	return out
}

// fixCRC recomputes the CRC of a line that still ends in " *XXXXXXXX".
func fixCRC(line []byte) {
	n := len(line)
	if n < 16 || line[n-10] != ' ' || line[n-9] != '*' {
		return
	}
	copy(line[n-8:], fmt.Sprintf("%08X", crc32.ChecksumIEEE(line[:n-9])))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func containsSubstring(list []string, s string) bool {
	for _, x := range list {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}
