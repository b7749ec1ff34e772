package cases

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hiltest/hiltest/harness"
	"github.com/hiltest/hiltest/protocol"
	"github.com/hiltest/hiltest/reference"
)

// macPattern is the HELLO mac format: uppercase hex with colons (PROTOCOL.md §2).
var macPattern = regexp.MustCompile(`^([0-9A-F]{2}:){5}[0-9A-F]{2}$`)

var capPattern = regexp.MustCompile(`^[a-z0-9.]+$`)

// minBlobMax is the smallest blob size a board must support (PROTOCOL.md §1.2).
const minBlobMax = 8192

// hostMaxFrame is the longest frame the host announces (PROTOCOL.md §1).
const hostMaxFrame = protocol.DefaultMaxFrame

// protocolCases are the wire-protocol conformance cases.
func protocolCases() []harness.Case {
	return []harness.Case{
		{ID: "proto/hello", Title: "HELLO fields present and well-formed (proto, fw, board, chip, mac, max, blob_max, dialect, caps)", Run: runHello},
		{ID: "proto/dialect-declared", Title: "The dialect the board reports in HELLO is the one the bench declares", Run: runDialectDeclared},
		{ID: "proto/ping", Title: "PING echoes text, every byte value and an empty value", Requires: []string{protocol.CapPing}, Run: runPing},
		{ID: "proto/ping/max-frame", Title: "PING with a payload just under the maximum frame length", Requires: []string{protocol.CapPing}, Run: runPingMaxFrame},
		{ID: "proto/ping/over-max", Title: "PING with a payload over the maximum frame length: carried by blobs or refused with TOO_LONG", Requires: []string{protocol.CapPing}, Run: runPingOverMax},
		{ID: "proto/blob/ping-chunked", Title: "PING with a value larger than a frame round-trips through blobs", Requires: []string{protocol.CapPing, protocol.CapBlob}, Run: runPingChunked},
		{ID: "proto/blob/put-get", Title: "BLOB.PUT in pieces and BLOB.GET return the same bytes", Requires: []string{protocol.CapBlob}, Run: runBlobPutGet},
		{ID: "proto/tls-ca/chunked", Title: "TLS.CA with a certificate bundle larger than a frame", Requires: []string{protocol.CapTLSCA, protocol.CapBlob}, Run: runTLSCAChunked},
		{ID: "proto/tls-ca/bad-pem", Title: "TLS.CA with no certificate is BAD_ARG arg=pem", Requires: []string{protocol.CapTLSCA}, Run: runTLSCABad},
		{ID: "proto/time/round-trip", Title: "TIME.SET then TIME.GET returns the time set and set=1", Requires: []string{protocol.CapTime}, Run: runTimeRoundTrip},
		{ID: "proto/error/unknown-verb", Title: "An unknown verb is UNKNOWN_VERB", Run: runUnknownVerb},
		{ID: "proto/error/unknown-arg", Title: "PING with an unknown argument is BAD_ARG naming it", Requires: []string{protocol.CapPing}, Run: runUnknownArg},
		{ID: "proto/dps-config", Title: "DPS.CONFIG applies host, port and api_version; a bad port is BAD_ARG", Requires: []string{protocol.CapDPSConfig}, Run: runDPSConfig},
		{ID: "proto/reset", Title: "RESET reboots the board and it answers again", Requires: []string{protocol.CapReset}, Optional: true, Timeout: 30 * time.Second, Run: runReset},
		{ID: "proto/net-wifi", Title: "NET.WIFI answers with an IP address", Requires: []string{protocol.CapNetWiFi}, Optional: true, Timeout: 30 * time.Second, Run: runNetWiFi},
	}
}

func runHello(_ context.Context, t *harness.T) {
	in := t.Board.Info()
	t.Output("firmware", in.Firmware+" "+in.FirmwareVersion)
	t.Output("mac", in.MAC)
	t.Output("caps", strings.Join(in.Caps, ","))
	t.Output("dialect", in.Dialect)
	bad := func(field, got, want string) {
		t.Fail(harness.Failure{Message: fmt.Sprintf("HELLO %s=%q: %s", field, got, want), Diagnosis: "malformed handshake (protocol/PROTOCOL.md §2, §4 HELLO)"})
	}
	if in.Proto != protocol.Version {
		bad("proto", strconv.Itoa(in.Proto), fmt.Sprintf("expected %d", protocol.Version))
	}
	for _, f := range []struct{ name, v string }{{"fw", in.Firmware}, {"fw_version", in.FirmwareVersion}, {"board", in.Board}, {"chip", in.Chip}} {
		if f.v == "" {
			bad(f.name, f.v, "missing or empty")
		}
	}
	if !macPattern.MatchString(in.MAC) {
		bad("mac", in.MAC, "expected six uppercase hex pairs with colons, e.g. 24:0A:C4:12:34:56")
	}
	if in.MaxFrame < protocol.MinMaxFrame {
		bad("max", strconv.Itoa(in.MaxFrame), fmt.Sprintf("below the minimum %d", protocol.MinMaxFrame))
	}
	if in.Dialect == "" {
		bad("dialect", in.Dialect, "missing")
	} else if _, err := reference.ParseDialect(in.Dialect); err != nil {
		bad("dialect", in.Dialect, err.Error())
	}
	if len(in.Caps) == 0 {
		bad("caps", "", "no capabilities listed")
	}
	seen := map[string]bool{}
	for _, c := range in.Caps {
		switch {
		case !capPattern.MatchString(c):
			bad("caps", c, "capabilities are lowercase names")
		case seen[c]:
			bad("caps", c, "listed twice")
		case !slices.Contains(knownCaps, c):
			t.Logf("capability %q is not in protocol version 1 (ignored)", c)
		}
		seen[c] = true
	}
	if in.HasCap(protocol.CapBlob) && in.BlobMax < minBlobMax {
		bad("blob_max", strconv.Itoa(in.BlobMax), fmt.Sprintf("a board with blobs must hold at least %d bytes per blob", minBlobMax))
	}
}

func runDialectDeclared(_ context.Context, t *harness.T) {
	in := t.Board.Info()
	declared := ""
	if t.Env != nil {
		declared = t.Env.Declared.Dialect
	}
	if declared == "" {
		t.Logf("the bench declares no dialect for this board; it reports %q", in.Dialect)
		return
	}
	if in.Dialect != declared {
		t.Fail(harness.Failure{Message: fmt.Sprintf("the board reports dialect %q in HELLO, the bench declares %q", in.Dialect, declared),
			Diagnosis: "wrong dialect: the bench file and the firmware disagree (tokens are compared in the declared dialect)"})
	}
}

// ping sends PING data=payload and checks the echo.
func ping(ctx context.Context, t *harness.T, what string, payload []byte) {
	f, ok := mustCall(ctx, t, protocol.VerbPing, protocol.Bytes("data", payload))
	if !ok {
		return
	}
	got, _ := f.Get("data")
	if d := reference.FirstDivergence(payload, got); d != nil {
		t.Fail(harness.Failure{Message: fmt.Sprintf("PING %s (%d bytes): echo %s", what, len(payload), d), Divergence: d,
			Diagnosis: pingCause(payload, got)})
	}
}

// pingCause names why an echo differs.
func pingCause(sent, got []byte) string {
	switch {
	case len(got) < len(sent) && bytes.HasPrefix(sent, got):
		return fmt.Sprintf("echo truncated to %d of %d bytes", len(got), len(sent))
	case len(got) == len(sent):
		for i := range sent {
			if sent[i] != got[i] {
				if sent[i] >= 0x80 || sent[i] < 0x20 || sent[i] == '%' || sent[i] == ' ' {
					return fmt.Sprintf("byte 0x%02x changed to 0x%02x: value encoding (percent-escapes) is wrong", sent[i], got[i])
				}
				return fmt.Sprintf("byte 0x%02x changed to 0x%02x", sent[i], got[i])
			}
		}
	}
	return "echo differs from the data sent"
}

func runPing(ctx context.Context, t *harness.T) {
	ping(ctx, t, "text", []byte("hello board"))
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	ping(ctx, t, "every byte value", all)
	ping(ctx, t, "escapes", []byte("100% = 50%+50% %41 %zz"))
	ping(ctx, t, "empty value", nil)
}

// frameLimit is the maximum frame length in use: the smaller of the
// board's and the host's.
func frameLimit(t *harness.T) int {
	m := t.Board.Info().MaxFrame
	if m <= 0 || m > hostMaxFrame {
		m = hostMaxFrame
	}
	return m
}

// pingOverhead is the length of a PING request frame without its data
// value, with the longest sequence number: "@@HIL REQ 65535 PING data=" +
// " *XXXXXXXX\n".
const pingOverhead = len("@@HIL REQ 65535 PING data=") + len(" *XXXXXXXX\n")

// filler returns n printable bytes that need no escaping.
func filler(n int, seed uint64) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~"
	r := rand.New(rand.NewPCG(seed, 0x68696c74))
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return b
}

func runPingMaxFrame(ctx context.Context, t *harness.T) {
	n := frameLimit(t) - pingOverhead - 1
	t.Logf("max frame %d: PING with %d bytes of data", frameLimit(t), n)
	ping(ctx, t, "just under the maximum frame", filler(n, 1))
}

func runPingOverMax(ctx context.Context, t *harness.T) {
	n := 2 * frameLimit(t)
	if in := t.Board.Info(); in.HasCap(protocol.CapBlob) && in.BlobMax > 0 && n > in.BlobMax {
		n = in.BlobMax
	}
	payload := filler(n, 2)
	f, err := t.Board.Call(ctx, protocol.VerbPing, protocol.Bytes("data", payload))
	var remote *protocol.RemoteError
	switch {
	case err == nil:
		got, _ := f.Get("data")
		if d := reference.FirstDivergence(payload, got); d != nil {
			t.Fail(harness.Failure{Message: fmt.Sprintf("PING over the maximum frame (%d bytes): echo %s", n, d), Divergence: d,
				Diagnosis: pingCause(payload, got)})
			return
		}
		t.Logf("%d bytes round-tripped (through blobs)", n)
	case errors.As(err, &remote) && remote.Code == protocol.CodeTooLong:
		t.Logf("refused with TOO_LONG: %s", remote.Message)
	case errors.As(err, &remote):
		t.Fail(harness.Failure{Message: fmt.Sprintf("PING over the maximum frame: ERR %s: %s", remote.Code, remote.Message),
			Diagnosis: "an over-long frame must be refused with TOO_LONG (or its value carried by blobs)"})
	case errors.Is(err, protocol.ErrTooLong):
		t.Logf("refused by the session: %v", err)
	case !t.Board.Info().HasCap(protocol.CapBlob) && !errors.Is(err, harness.ErrTimeout) &&
		!errors.Is(err, harness.ErrBoardReset) && !errors.Is(err, harness.ErrBoardLost):
		// Without blobs the session cannot carry the value and refuses
		// to send the frame.
		t.Logf("refused by the session (the board has no blobs): %v", err)
	default:
		t.Error(fmt.Errorf("PING over the maximum frame: %w", err))
	}
}

func runPingChunked(ctx context.Context, t *harness.T) {
	n := 3 * frameLimit(t)
	if bm := t.Board.Info().BlobMax; bm > 0 && n > bm {
		n = bm
	}
	// Bytes that need escaping make the frame three times longer than the
	// value: the session must cut at escape boundaries.
	payload := filler(n, 3)
	for i := 0; i < n; i += 7 {
		payload[i] = byte(i)
	}
	ping(ctx, t, "larger than a frame", payload)
}

func runBlobPutGet(ctx context.Context, t *harness.T) {
	const name = "hiltest"
	data := filler(600, 4)
	data[0], data[1], data[599] = 0, '%', 0xFF
	for _, part := range []struct{ off, end int }{{0, 250}, {250, 600}} {
		f, ok := mustCall(ctx, t, protocol.VerbBlobPut, protocol.String("name", name), protocol.Int("off", int64(part.off)),
			protocol.Bytes("data", data[part.off:part.end]), protocol.Int("total", int64(len(data))))
		if !ok {
			return
		}
		if l, err := f.Int("len"); err != nil || l != int64(part.end) {
			t.Fail(harness.Failure{Message: fmt.Sprintf("BLOB.PUT off=%d: len=%s, expected %d", part.off, f.String("len"), part.end),
				Diagnosis: "BLOB.PUT must answer the number of bytes the blob holds"})
		}
	}
	var got []byte
	for len(got) < len(data) {
		f, ok := mustCall(ctx, t, protocol.VerbBlobGet, protocol.String("name", name), protocol.Int("off", int64(len(got))), protocol.Int("max", 256))
		if !ok {
			return
		}
		if total, err := f.Int("total"); err != nil || total != int64(len(data)) {
			t.Fail(harness.Failure{Message: fmt.Sprintf("BLOB.GET total=%s, expected %d", f.String("total"), len(data))})
			return
		}
		piece, _ := f.Get("data")
		if len(piece) == 0 {
			break
		}
		if len(piece) > 256 {
			t.Fail(harness.Failure{Message: fmt.Sprintf("BLOB.GET max=256 returned %d bytes", len(piece)), Diagnosis: "BLOB.GET ignores max"})
			return
		}
		got = append(got, piece...)
	}
	if d := reference.FirstDivergence(data, got); d != nil {
		t.Fail(harness.Failure{Message: "blob content " + d.String(), Divergence: d, Diagnosis: pingCause(data, got)})
	}
}

// bundleCert returns the i-th (from 1) self-signed ECDSA certificate of a
// bundle in PEM.
func bundleCert(i int) ([]byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(int64(i)),
		Subject:               pkix.Name{CommonName: fmt.Sprintf("hiltest bundle CA %d", i), Organization: []string{"hiltest"}},
		NotBefore:             time.Unix(1700000000, 0),
		NotAfter:              time.Unix(1700000000, 0).Add(20 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// chunkedBundle returns a bundle of n self-signed certificates in PEM: the
// first n whose frame argument is longer than limit (PEM newlines are
// escaped as %0A, 3 bytes each), or 16 when 16 still fit. Each certificate
// is made once, appended to the bundle.
func chunkedBundle(limit int) (bundle []byte, n int, err error) {
	newlines := 0
	for n < 16 {
		c, err := bundleCert(n + 1)
		if err != nil {
			return nil, 0, err
		}
		bundle = append(bundle, c...)
		newlines += bytes.Count(c, []byte("\n"))
		n++
		if len(bundle)+2*newlines > limit {
			break
		}
	}
	return bundle, n, nil
}

func runTLSCAChunked(ctx context.Context, t *harness.T) {
	bundle, n, err := chunkedBundle(frameLimit(t))
	if err != nil {
		t.Error(fmt.Errorf("make certificates: %w", err))
		return
	}
	if bm := t.Board.Info().BlobMax; bm > 0 && len(bundle) > bm {
		t.Skip(fmt.Sprintf("a bundle larger than a frame (%d bytes) does not fit the board's blobs (%d)", len(bundle), bm))
		return
	}
	f, ok := mustCall(ctx, t, protocol.VerbTLSCA, protocol.Bytes("pem", bundle))
	if ok {
		if got, err := f.Int("certs"); err != nil || got != int64(n) {
			t.Fail(harness.Failure{Message: fmt.Sprintf("TLS.CA with %d certificates (%d bytes) answered certs=%s", n, len(bundle), f.String("certs")),
				Diagnosis: "the bundle was cut or not parsed whole"})
		}
	}
	restoreCA(ctx, t)
}

// restoreCA loads the bench DPS's trust anchor again after a case changed it.
func restoreCA(ctx context.Context, t *harness.T) {
	if t.Env != nil && len(t.Env.DPS.CAPEM) > 0 {
		mustCall(ctx, t, protocol.VerbTLSCA, protocol.Bytes("pem", t.Env.DPS.CAPEM))
	}
}

func runTLSCABad(ctx context.Context, t *harness.T) {
	f, remote, ok := call(ctx, t, protocol.VerbTLSCA, protocol.String("pem", "this is not a certificate"))
	if !ok {
		return
	}
	checkError(t, protocol.VerbTLSCA, f, remote, protocol.CodeBadArg, "pem")
}

func runTimeRoundTrip(ctx context.Context, t *harness.T) {
	set, ok := setClock(ctx, t)
	if !ok {
		return
	}
	f, ok := mustCall(ctx, t, protocol.VerbTimeGet)
	if !ok || !requireResults(t, f, "unix", "set") {
		return
	}
	got, err := f.Int("unix")
	after := now(t).Unix()
	switch {
	case err != nil:
		t.Fail(harness.Failure{Message: err.Error()})
	case got < set || got > after+2:
		t.Fail(harness.Failure{Message: fmt.Sprintf("TIME.GET unix=%d after TIME.SET unix=%d (bench clock now %d)", got, set, after),
			Diagnosis: timeCause(got, set)})
	}
	if f.String("set") != "1" {
		t.Fail(harness.Failure{Message: fmt.Sprintf("TIME.GET set=%s after TIME.SET, expected 1", f.String("set")),
			Diagnosis: "the board does not remember that its clock was set"})
	}
	t.Output("unix", strconv.FormatInt(got, 10))
}

func timeCause(got, set int64) string {
	switch {
	case got < clockSetEpoch:
		return "the clock still runs from boot (1970): TIME.SET was not applied"
	case got < set:
		return fmt.Sprintf("the clock runs %d s behind the time set", set-got)
	}
	return fmt.Sprintf("the clock runs %d s ahead of the time set", got-set)
}

func runUnknownVerb(ctx context.Context, t *harness.T) {
	f, remote, ok := call(ctx, t, "HILTEST.NO_SUCH_VERB")
	if !ok {
		return
	}
	checkError(t, "HILTEST.NO_SUCH_VERB", f, remote, protocol.CodeUnknownVerb, "")
}

func runUnknownArg(ctx context.Context, t *harness.T) {
	f, remote, ok := call(ctx, t, protocol.VerbPing, protocol.String("data", "x"), protocol.String("bogus", "1"))
	if !ok {
		return
	}
	checkError(t, protocol.VerbPing, f, remote, protocol.CodeBadArg, "bogus")
}

func runDPSConfig(ctx context.Context, t *harness.T) {
	want := dpsConfig{Host: "dps.hiltest.example", Port: 8443, APIVersion: "2019-03-31"}
	if _, ok := configureDPS(ctx, t, want); !ok {
		return
	}
	f, remote, ok := call(ctx, t, protocol.VerbDPSConfig, protocol.String("port", "not-a-port"))
	if !ok {
		return
	}
	checkError(t, protocol.VerbDPSConfig, f, remote, protocol.CodeBadArg, "port")
	restoreDPSConfig(ctx, t)
}

// restoreDPSConfig points the board at the bench's DPS again, or at the
// protocol defaults without one.
func restoreDPSConfig(ctx context.Context, t *harness.T) {
	c := dpsConfig{Host: reference.DefaultEndpoint, Port: 443, APIVersion: reference.DefaultAPIVersion}
	if t.Env != nil && t.Env.DPS.Host != "" {
		c = dpsConfig{Host: t.Env.DPS.Host, Port: t.Env.DPS.Port, APIVersion: t.Env.DPS.APIVersion}
		if c.Port == 0 {
			c.Port = 443
		}
	}
	configureDPS(ctx, t, c)
}

func runReset(ctx context.Context, t *harness.T) {
	_, err := t.Board.Call(ctx, protocol.VerbReset)
	var remote *protocol.RemoteError
	if errors.As(err, &remote) {
		t.Fail(harness.Failure{Message: fmt.Sprintf("RESET answered ERR %s: %s", remote.Code, remote.Message)})
		return
	}
	if err != nil {
		t.Logf("RESET: %v (the reboot may be reported as an error)", err)
	}
	// The board must answer again once it has rebooted and the session
	// has handshaken; give it a few tries.
	var last error
	for i := 0; i < 10; i++ {
		if ctx.Err() != nil {
			break
		}
		verb := protocol.VerbHello
		if t.Board.Info().HasCap(protocol.CapPing) {
			verb = protocol.VerbPing
		}
		if verb == protocol.VerbHello {
			_, last = t.Board.Call(ctx, verb, protocol.Int("proto", protocol.Version), protocol.Int("max", hostMaxFrame))
		} else {
			_, last = t.Board.Call(ctx, verb, protocol.String("data", "after reset"))
		}
		if last == nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	if last != nil {
		t.Error(fmt.Errorf("the board did not answer after RESET: %w", last))
		return
	}
	if t.Board.Info().HasCap(protocol.CapTime) {
		if f, ok := mustCall(ctx, t, protocol.VerbTimeGet); ok && f.String("set") != "0" {
			t.Logf("TIME.GET set=%s right after RESET (expected 0: the clock is not kept across a reboot)", f.String("set"))
		}
	}
	restoreCA(ctx, t)
}

func runNetWiFi(ctx context.Context, t *harness.T) {
	f, ok := mustCall(ctx, t, protocol.VerbNetWiFi, protocol.String("ssid", "hiltest"), protocol.String("password", ""),
		protocol.Int("timeout", 20))
	if !ok || !requireResults(t, f, "ip") {
		return
	}
	ip := f.String("ip")
	t.Output("ip", ip)
	if net.ParseIP(ip) == nil {
		t.Fail(harness.Failure{Message: fmt.Sprintf("NET.WIFI ip=%q is not an IP address", ip)})
	}
}
