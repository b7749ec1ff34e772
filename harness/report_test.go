package harness

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/hiltest/hiltest/internal/junitcheck"
	"github.com/hiltest/hiltest/internal/pollpty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/hiltest/hiltest/reference"
)

const (
	testGroupKey  = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="
	testDeviceKey = "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc="
)

func TestRedactorText(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		hidden   []string // must not appear in the output
		kept     []string // must appear in the output
		unchaned bool
	}{
		{name: "frame args", in: "@@HIL REQ 3 DERIVE group_key=" + testGroupKey + " reg_id=dev-1",
			hidden: []string{testGroupKey}, kept: []string{"reg_id=dev-1", "group_key=8isr"}},
		{name: "token sig", in: "SharedAccessSignature sr=0ne%2Fregistrations%2Fdev&sig=abc%2Bdef%3D&se=1700000000&skn=registration",
			hidden: []string{"abc%2Bdef%3D"}, kept: []string{"sr=0ne%2Fregistrations%2Fdev", "se=1700000000", "skn=registration"}},
		{name: "bare base64 key in a log line", in: "I (123) dps: using key " + testDeviceKey,
			hidden: []string{testDeviceKey}, kept: []string{"I (123) dps: using key Jsm0"}},
		{name: "device key arg", in: "device_key=" + testDeviceKey, hidden: []string{testDeviceKey}},
		{name: "short base64 kept", in: "mac=24:0A:C4:12:34:56 data=aGVsbG8=", unchaned: true},
		{name: "blob reference kept", in: "request.blob=r1 request.len=420", unchaned: true},
		{name: "empty", in: "", unchaned: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Redactor{}.Text(tt.in)
			if tt.unchaned {
				assert.Equal(t, tt.in, got)
			}
			for _, h := range tt.hidden {
				assert.NotContains(t, got, h)
			}
			for _, k := range tt.kept {
				assert.Contains(t, got, k)
			}
			assert.Equal(t, tt.in, Redactor{Show: true}.Text(tt.in), "--show-secrets passes text through")
		})
	}
}

func TestSecretOutput(t *testing.T) {
	tests := map[string]bool{
		"device_key": true, "token": true, "sig": true, "signature": true, "group_key": true, "request": true,
		"sr": false, "se": false, "status": false, "hub": false, "reg_id": false,
	}
	for k, want := range tests {
		assert.Equal(t, want, SecretOutput(k), k)
	}
}

func TestFailureReportRedactsSecretDivergence(t *testing.T) {
	exp := []byte("SharedAccessSignature sr=x&sig=AAAA&se=1")
	got := []byte("SharedAccessSignature sr=x&sig=AABA&se=1")
	d := reference.FirstDivergence(exp, got)
	require.NotNil(t, d)
	f := Failure{Message: "token " + d.String(), Divergence: d, Secret: true, Diagnosis: "signed with the group key"}

	fr := Redactor{}.failureReport(f)
	require.NotNil(t, fr.Divergence)
	assert.True(t, fr.Divergence.Redacted)
	assert.Equal(t, d.Offset, fr.Divergence.Offset)
	assert.NotContains(t, fr.Divergence.View, "AABA")
	assert.NotContains(t, fr.Message, "'B'")
	assert.Contains(t, fr.Message, "differs at byte 33")
	assert.Equal(t, "signed with the group key", fr.Diagnosis)

	shown := Redactor{Show: true}.failureReport(f)
	assert.False(t, shown.Divergence.Redacted)
	assert.Contains(t, shown.Divergence.View, "AABA")
	assert.Equal(t, int('B'), shown.Divergence.GotByte)
}

// sampleReport is a report with every kind of result.
func sampleReport() *Report {
	r := &Report{Version: ReportVersion, Tool: "hiltest", Started: time.Unix(1700000000, 0).UTC(), DurationMS: 1234,
		DPS: DPSReport{Mode: "mock", Endpoint: "127.0.0.1:4443", IDScope: "0ne00DEMO01"}}
	info := &BoardInfo{Proto: 1, Firmware: "hiltest-agent", FirmwareVersion: "1.0.0", Dialect: "default", Caps: []string{"ping", "sas"}}
	r.Boards = []BoardReport{
		{Name: "sim-1", Info: info, Declared: Declared{Firmware: "hiltest-agent", Revision: "B", Labels: []string{"a", "b"}}, DurationMS: 800,
			Cases: []CaseResult{
				{Board: "sim-1", ID: "proto/ping", Status: StatusPass, DurationMS: 3, Outputs: map[string]string{"data": "x"}},
				{Board: "sim-1", ID: "sas/default/primary", Status: StatusFail, DurationMS: 12,
					Message:      "SAS signature differs at byte 87",
					Failures:     []FailureReport{{Message: "SAS signature differs at byte 87", Diagnosis: "signed with the group key instead of the derived device key", Divergence: &DivergenceReport{Offset: 87, View: "redacted"}}},
					DeviceOutput: []string{"I (10) agent: \x01 junk"}},
				{Board: "sim-1", ID: "wifi/join", Status: StatusSkip, Message: `board lacks capability "net.wifi"`},
				{Board: "sim-1", ID: "dps/register", Optional: true, Status: StatusError, Message: "board reset during dps/register"},
			}},
		{Name: "sim-2", SetupError: "open /dev/pts/99: no such file"},
	}
	r.summarize()
	return r
}

// validateJUnit checks data as CI readers read it (junitcheck.Check) and
// returns the parsed document.
func validateJUnit(t *testing.T, data []byte) *junitcheck.Document {
	t.Helper()
	j, err := junitcheck.Check(data)
	require.NoError(t, err)
	return j
}

func TestJUnitValidates(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, sampleReport().WriteJUnit(&buf))
	j := validateJUnit(t, buf.Bytes())
	require.Len(t, j.Suites, 2)
	assert.Equal(t, "sim-1", *j.Suites[0].Name)
	assert.Equal(t, 5, *j.Tests) // 4 cases on sim-1, sim-2's setup error as one testcase
	c := j.Suites[0].Cases[1]
	require.NotNil(t, c.Failure)
	assert.Equal(t, "SAS signature differs at byte 87", *c.Failure.Message)
	assert.Contains(t, c.Failure.Body, "diagnosis: signed with the group key")
	assert.Contains(t, c.Failure.Body, "device output:")
	assert.NotContains(t, buf.String(), "\x01", "control bytes are not valid XML")
	require.NotNil(t, j.Suites[1].Cases[0].Error)
}

func TestReportRoundTripAndTable(t *testing.T) {
	r := sampleReport()
	path := filepath.Join(t.TempDir(), "report.json")
	require.NoError(t, r.WriteFile(path))
	back, err := ReadReport(path)
	require.NoError(t, err)
	assert.Equal(t, r.Summary, back.Summary)
	assert.Equal(t, Summary{Total: 4, Pass: 1, Fail: 1, Skip: 1, Error: 1, Failed: 1}, back.Summary)
	require.NotNil(t, back.Case("sim-1", "sas/default/primary"))
	assert.Equal(t, []string{"a", "b"}, back.Board("sim-1").Declared.Labels)

	var tbl bytes.Buffer
	require.NoError(t, back.WriteTable(&tbl))
	out := tbl.String()
	assert.Contains(t, out, "board sim-1: sas/default/primary: SAS signature differs at byte 87: signed with the group key instead of the derived device key")
	assert.Contains(t, out, "board sim-2: setup: open /dev/pts/99")
	assert.Contains(t, out, "4 cases on 2 boards: 1 pass, 1 fail, 1 skip, 1 error")
}

func TestReadReportErrors(t *testing.T) {
	dir := t.TempDir()
	tests := map[string]string{"not json": "hello", "not a report": `{"a":1}`, "future version": `{"version":99,"boards":[]}`}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
			require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
			_, err := ReadReport(p)
			require.Error(t, err)
			assert.Contains(t, err.Error(), p)
		})
	}
	_, err := ReadReport(filepath.Join(dir, "missing.json"))
	require.Error(t, err)
}

func TestProgressPlainAndTTY(t *testing.T) {
	var plain bytes.Buffer
	p := NewProgress(&plain, false, 2)
	p.CaseDone(CaseResult{Board: "b1", ID: "c1", Status: StatusPass, DurationMS: 5})
	p.CaseDone(CaseResult{Board: "b1", ID: "c2", Status: StatusFail, Message: "boom"})
	p.Finish()
	assert.Equal(t, "[1/2] b1 c1 pass (5ms)\n[2/2] b1 c2 fail (0ms): boom\n", plain.String())

	var tty bytes.Buffer
	p = NewProgress(&tty, true, 2)
	p.CaseDone(CaseResult{Board: "b1", ID: "c1", Status: StatusPass})
	p.Note("note")
	p.Finish()
	assert.True(t, strings.HasPrefix(tty.String(), "\r1/2 cases"))
	assert.Contains(t, tty.String(), "\rnote\n")

	assert.False(t, IsTerminal(&plain))
	f, err := os.CreateTemp(t.TempDir(), "x")
	require.NoError(t, err)
	defer f.Close()
	assert.False(t, IsTerminal(f), "a regular file is not a terminal")

	master, slave, err := pollpty.Open()
	require.NoError(t, err)
	defer master.Close()
	defer slave.Close()
	assert.True(t, IsTerminal(slave), "a pty is a terminal")
	// A terminal opened by path is pollable; asking leaves it so, and its
	// read deadline still applies.
	byPath, err := os.OpenFile(slave.Name(), os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	defer byPath.Close()
	assert.True(t, IsTerminal(byPath), "a pty opened by path is a terminal")
	require.NoError(t, byPath.SetReadDeadline(time.Now().Add(10*time.Millisecond)))
	read := make(chan error, 1)
	go func() {
		_, err := byPath.Read(make([]byte, 1))
		read <- err
	}()
	select {
	case err := <-read:
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	case <-time.After(10 * time.Second):
		_, _ = master.Write([]byte("\n")) // ends the Read: the file is blocking now
		t.Fatal("IsTerminal left the file in blocking mode: a read with a deadline is still waiting")
	}
}

func TestWriteSummaryByBoard(t *testing.T) {
	r := sampleReport()
	var buf bytes.Buffer
	require.NoError(t, r.WriteSummary(&buf, TableOptions{ByBoard: true, MaxFailures: 1}))
	out := buf.String()
	assert.Contains(t, out, "hiltest-agent 1.0.0")
	assert.Contains(t, out, "sas/default/primary: SAS signature")
	assert.Contains(t, out, "board sim-1: sas/default/primary: SAS signature differs at byte 87")
	assert.Contains(t, out, "board sim-1: … and 1 more (see the reports)")
	assert.NotContains(t, out, "board sim-1: dps/register:")
}

func TestRedactorOutput(t *testing.T) {
	token := "SharedAccessSignature sr=0ne00DEMO01%2Fregistrations%2Fdev-1&sig=vHyZ2e8yQ%2BbVZ0S6lM%2F1nHcG4hGfS2p7wMGnFdTI9uE%3D&se=1700000000&skn=registration"
	request := "PUT /0ne00DEMO01/registrations/dev-1/register?api-version=2021-06-01 HTTP/1.1\r\nAuthorization: " + token + "\r\n\r\n{\"registrationId\":\"dev-1\"}"
	tests := []struct {
		key, value string
		hidden     []string
		kept       []string
	}{
		{"token", token, []string{"vHyZ2e8yQ%2BbVZ0S6lM"}, []string{"sr=0ne00DEMO01%2Fregistrations%2Fdev-1", "se=1700000000", "skn=registration"}},
		{"request", request, []string{"vHyZ2e8yQ%2BbVZ0S6lM"}, []string{"api-version=2021-06-01", `{"registrationId":"dev-1"}`, "sr=0ne00DEMO01"}},
		{"device_key", testDeviceKey, []string{testDeviceKey}, []string{"Jsm0"}},
		{"dialect", "azure-iot-sdk-c", nil, []string{"azure-iot-sdk-c"}},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			got := Redactor{}.Output(tt.key, tt.value)
			for _, h := range tt.hidden {
				assert.NotContains(t, got, h)
			}
			for _, k := range tt.kept {
				assert.Contains(t, got, k)
			}
			assert.Equal(t, tt.value, Redactor{Show: true}.Output(tt.key, tt.value))
		})
	}
}

func TestRedactorTextKeepsUnchangedText(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{name: "plain log line", in: "I (123) wifi: connected to bench-ap"},
		{name: "non-secret args", in: "@@HIL RSP 3 OK reg_id=dev-1 status=assigned"},
		{name: "short base64", in: "data=aGVsbG8="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := strings.Clone(tt.in)
			got := Redactor{}.Text(in)
			require.Equal(t, in, got)
			assert.Same(t, unsafe.StringData(in), unsafe.StringData(got), "unchanged text is returned, not a copy")
		})
	}
}

func TestHasB64Run(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want bool
	}{
		{in: "", n: 3, want: false},
		{in: "abc", n: 3, want: true},
		{in: "ab c", n: 3, want: false},
		{in: "a+/b", n: 4, want: true},
		{in: "ab=cd", n: 3, want: false},
		{in: testDeviceKey, n: 43, want: true},
		{in: testDeviceKey[:40], n: 43, want: false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, hasB64Run(tt.in, tt.n), "%q n=%d", tt.in, tt.n)
	}
}
