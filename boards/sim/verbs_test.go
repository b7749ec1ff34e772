package sim

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hiltest/hiltest/protocol"
	"github.com/hiltest/hiltest/reference"
)

const (
	katGroupKey = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="
	katRegID    = "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"
	katDevKey   = "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc="
	testScope   = "0neFEEDC0DE"
)

func TestDerive(t *testing.T) {
	_, c := boot(t, Config{Seed: 2})
	f := c.ok(protocol.VerbDerive, protocol.String("group_key", katGroupKey), protocol.String("reg_id", katRegID))
	if got := f.String("device_key"); got != katDevKey {
		t.Errorf("device_key = %q, want %q (Microsoft docs vector)", got, katDevKey)
	}
	tests := []struct {
		name string
		args []protocol.Arg
		arg  string
	}{
		{"not base64", []protocol.Arg{protocol.String("group_key", "not*base64"), protocol.String("reg_id", "a")}, "group_key"},
		{"empty key", []protocol.Arg{protocol.String("group_key", ""), protocol.String("reg_id", "a")}, "group_key"},
		{"bad reg id", []protocol.Arg{protocol.String("group_key", katGroupKey), protocol.String("reg_id", "a b")}, "reg_id"},
		{"missing reg id", []protocol.Arg{protocol.String("group_key", katGroupKey)}, "reg_id"},
		{"unknown arg", []protocol.Arg{protocol.String("group_key", katGroupKey), protocol.String("reg_id", "a"), protocol.String("x", "1")}, "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := c.call(protocol.VerbDerive, tt.args...)
			if f.Kind != protocol.KindError || f.String("code") != string(protocol.CodeBadArg) || f.String("arg") != tt.arg {
				t.Errorf("got %s, want ERR BAD_ARG arg=%s", f.Redacted(), tt.arg)
			}
		})
	}
}

func TestSASMatchesReference(t *testing.T) {
	for _, d := range Dialects() {
		t.Run(d, func(t *testing.T) {
			_, c := boot(t, Config{Seed: 3, Dialect: d})
			dl := reference.Dialect(d)
			cases := []struct {
				name    string
				args    []protocol.Arg
				params  reference.SASParams
				keyName string
			}{
				{"scope and id", []protocol.Arg{protocol.String("id_scope", testScope), protocol.String("reg_id", katRegID)},
					reference.SASParams{IDScope: testScope, RegistrationID: katRegID}, dl.DefaultKeyName()},
				{"policy empty", []protocol.Arg{protocol.String("id_scope", testScope), protocol.String("reg_id", "my.dev:1_x"), protocol.String("policy", "")},
					reference.SASParams{IDScope: testScope, RegistrationID: "my.dev:1_x"}, ""},
				{"policy given", []protocol.Arg{protocol.String("id_scope", testScope), protocol.String("reg_id", katRegID), protocol.String("policy", "registration")},
					reference.SASParams{IDScope: testScope, RegistrationID: katRegID}, "registration"},
				{"raw resource", []protocol.Arg{protocol.String("resource", "MyHub.azure-devices.net/devices/d~1 (x)!*")},
					reference.SASParams{Resource: "MyHub.azure-devices.net/devices/d~1 (x)!*"}, dl.DefaultKeyName()},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					args := append(tc.args, protocol.String("key", katDevKey), protocol.Int("expiry", 1578941692))
					f := c.ok(protocol.VerbSAS, args...)
					p := tc.params
					p.Dialect, p.Key, p.Expiry, p.KeyName = dl, katDevKey, 1578941692, tc.keyName
					want, err := reference.NewSAS(p)
					if err != nil {
						t.Fatal(err)
					}
					for k, v := range map[string]string{"sr": want.EncodedResource, "sts": want.StringToSign,
						"sig": want.Signature, "se": "1578941692", "token": want.Token} {
						if got := f.String(k); got != v {
							t.Errorf("%s = %q, want %q", k, got, v)
						}
					}
				})
			}
		})
	}
}

func TestClockAndTTL(t *testing.T) {
	_, c := boot(t, Config{Seed: 4})
	g := c.ok(protocol.VerbTimeGet)
	if g.String("set") != "0" {
		t.Errorf("TIME.GET before TIME.SET: set=%s", g.String("set"))
	}
	if n, _ := g.Int("unix"); n > 60 {
		t.Errorf("unset clock reads %d, want near 0 (1970)", n)
	}
	// ttl on the unset clock: expiry near 1970.
	s := c.ok(protocol.VerbSAS, protocol.String("id_scope", testScope), protocol.String("reg_id", "dev1"), protocol.String("key", katDevKey), protocol.Int("ttl", 3600))
	if se, _ := s.Int("se"); se < 3600 || se > 3660 {
		t.Errorf("se with unset clock = %d, want about 3600", se)
	}
	const now = 1_800_000_000
	st := c.ok(protocol.VerbTimeSet, protocol.Int("unix", now))
	if st.String("unix") != strconv.Itoa(now) {
		t.Errorf("TIME.SET answered unix=%s", st.String("unix"))
	}
	g = c.ok(protocol.VerbTimeGet)
	if n, _ := g.Int("unix"); g.String("set") != "1" || n < now || n > now+5 {
		t.Errorf("TIME.GET after set: %s", g.Redacted())
	}
	s = c.ok(protocol.VerbSAS, protocol.String("id_scope", testScope), protocol.String("reg_id", "dev1"), protocol.String("key", katDevKey), protocol.Int("ttl", 3600))
	if se, _ := s.Int("se"); se < now+3600 || se > now+3605 {
		t.Errorf("se after TIME.SET = %d, want about %d", se, now+3600)
	}
	for _, bad := range [][]protocol.Arg{
		{protocol.String("id_scope", testScope), protocol.String("reg_id", "d"), protocol.String("key", katDevKey)},
		{protocol.String("id_scope", testScope), protocol.String("reg_id", "d"), protocol.String("key", katDevKey), protocol.Int("ttl", 1), protocol.Int("expiry", 5)},
		{protocol.String("id_scope", testScope), protocol.String("reg_id", "d"), protocol.String("key", "%%%"), protocol.Int("ttl", 1)},
		{protocol.String("resource", "x/y"), protocol.String("id_scope", testScope), protocol.String("key", katDevKey), protocol.Int("ttl", 1)},
	} {
		if f := c.call(protocol.VerbSAS, bad...); f.String("code") != string(protocol.CodeBadArg) || f.String("arg") == "" {
			t.Errorf("SAS %v: got %s, want BAD_ARG with arg", bad, f.Redacted())
		}
	}
	// The clock does not survive a reset.
	c.ok(protocol.VerbReset)
	c.waitEvent(protocol.EventReady, 5*time.Second)
	if g := c.ok(protocol.VerbTimeGet); g.String("set") != "0" {
		t.Errorf("clock still set after RESET: %s", g.Redacted())
	}
}

func TestReset(t *testing.T) {
	_, c := boot(t, Config{Seed: 5})
	c.hello()
	c.ok(protocol.VerbBlobPut, protocol.String("name", "x"), protocol.Int("off", 0), protocol.String("data", "abc"))
	f := c.ok(protocol.VerbReset)
	if f.Verb != protocol.VerbReset {
		t.Fatalf("RESET answered %s", f.Redacted())
	}
	c.logs = nil
	r := c.waitEvent(protocol.EventReady, 5*time.Second)
	if r.String("reason") != "sw" || r.Seq != 0 {
		t.Errorf("READY after RESET = %s, want reason=sw seq 0", r.Redacted())
	}
	mustContain(t, c.allLogs(), "rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)")
	if g := c.call(protocol.VerbBlobGet, protocol.String("name", "x")); g.String("code") != string(protocol.CodeBadArg) {
		t.Errorf("blob survived reset: %s", g.Redacted())
	}
	if f := c.call(protocol.VerbReset, protocol.String("now", "1")); f.String("arg") != "now" {
		t.Errorf("RESET with an argument: %s", f.Redacted())
	}
}

func TestBlobs(t *testing.T) {
	_, c := boot(t, Config{Seed: 6})
	data := make([]byte, 20000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	c.putBlob("big_1", data, 1000)
	f := c.ok(protocol.VerbBlobGet, protocol.String("name", "big_1"), protocol.Int("off", 0))
	if n, _ := f.Int("total"); n != int64(len(data)) {
		t.Errorf("total = %d", n)
	}
	if fl := len(mustEncode(t, f)); fl > 4096 {
		t.Errorf("BLOB.GET answer is %d bytes, more than max 4096", fl)
	}
	got := c.result(protocol.NewOK(0, "X", protocol.String("v.blob", "big_1"), protocol.Int("v.len", int64(len(data)))), "v")
	if !bytes.Equal(got, data) {
		t.Error("blob round trip differs")
	}
	g := c.ok(protocol.VerbBlobGet, protocol.String("name", "big_1"), protocol.Int("off", 10), protocol.Int("max", 5))
	if d, _ := g.Get("data"); !bytes.Equal(d, data[10:15]) {
		t.Errorf("BLOB.GET off=10 max=5 = %x", d)
	}
	// Writing inside a blob overwrites in place.
	c.ok(protocol.VerbBlobPut, protocol.String("name", "ow"), protocol.Int("off", 0), protocol.String("data", "abcdef"))
	if f := c.ok(protocol.VerbBlobPut, protocol.String("name", "ow"), protocol.Int("off", 2), protocol.String("data", "XY")); f.String("len") != "6" {
		t.Errorf("overwrite: %s", f.Redacted())
	}
	if g := c.ok(protocol.VerbBlobGet, protocol.String("name", "ow")); g.String("data") != "abXYef" {
		t.Errorf("after overwrite: %q", g.String("data"))
	}
	// A request argument through K.blob.
	c.putBlob("pingdata", []byte("hello from a blob"), 5)
	p := c.ok(protocol.VerbPing, protocol.String("data.blob", "pingdata"))
	if p.String("data") != "hello from a blob" {
		t.Errorf("PING data.blob = %q", p.String("data"))
	}
	// A result that does not fit comes back as K.blob + K.len.
	p = c.ok(protocol.VerbPing, protocol.String("data.blob", "big_1"))
	if p.String("data.blob") == "" || p.String("data.len") != "20000" {
		t.Fatalf("large PING answer = %s", p.Redacted())
	}
	if !bytes.Equal(c.result(p, "data"), data) {
		t.Error("PING through blobs differs")
	}
	for _, tc := range []struct {
		verb string
		args []protocol.Arg
		arg  string
	}{
		{protocol.VerbBlobPut, []protocol.Arg{protocol.String("name", "Bad-Name"), protocol.Int("off", 0), protocol.String("data", "x")}, "name"},
		{protocol.VerbBlobPut, []protocol.Arg{protocol.String("name", "n"), protocol.Int("off", 5), protocol.String("data", "x")}, "off"},
		{protocol.VerbBlobPut, []protocol.Arg{protocol.String("name", "n"), protocol.Int("off", 0), protocol.String("data", "xyz"), protocol.Int("total", 2)}, "total"},
		{protocol.VerbBlobGet, []protocol.Arg{protocol.String("name", "nope")}, "name"},
		{protocol.VerbPing, []protocol.Arg{protocol.String("data.blob", "nope")}, "data.blob"},
		{protocol.VerbPing, []protocol.Arg{protocol.String("data.blob", "pingdata"), protocol.String("data", "x")}, "data"},
	} {
		f := c.call(tc.verb, tc.args...)
		if f.String("code") != string(protocol.CodeBadArg) || f.String("arg") != tc.arg {
			t.Errorf("%s %v: got %s, want BAD_ARG arg=%s", tc.verb, tc.args, f.Redacted(), tc.arg)
		}
	}
}

func mustEncode(t *testing.T, f *protocol.Frame) []byte {
	b, err := protocol.Encode(f, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestConfigVerbs(t *testing.T) {
	_, c := boot(t, Config{Seed: 7})
	pemData := append(selfSignedPEM(t), selfSignedPEM(t)...)
	c.putBlob("ca", pemData, 900)
	if f := c.ok(protocol.VerbTLSCA, protocol.String("pem.blob", "ca")); f.String("certs") != "2" {
		t.Errorf("TLS.CA certs = %s", f.String("certs"))
	}
	if f := c.call(protocol.VerbTLSCA, protocol.String("pem", "garbage")); f.String("arg") != "pem" {
		t.Errorf("TLS.CA garbage: %s", f.Redacted())
	}
	f := c.ok(protocol.VerbDPSConfig)
	if f.String("host") != "global.azure-devices-provisioning.net" || f.String("port") != "443" || f.String("api_version") != "2021-06-01" {
		t.Errorf("DPS.CONFIG defaults: %s", f.Redacted())
	}
	f = c.ok(protocol.VerbDPSConfig, protocol.String("host", "127.0.0.1"), protocol.Int("port", 8443), protocol.String("api_version", "2019-03-31"))
	if f.String("host") != "127.0.0.1" || f.String("port") != "8443" || f.String("api_version") != "2019-03-31" {
		t.Errorf("DPS.CONFIG: %s", f.Redacted())
	}
	if f := c.call(protocol.VerbDPSConfig, protocol.Int("port", 70000)); f.String("arg") != "port" {
		t.Errorf("DPS.CONFIG port=70000: %s", f.Redacted())
	}
	if f := c.ok(protocol.VerbNetWiFi, protocol.String("ssid", "bench"), protocol.String("password", "")); f.String("ip") != "127.0.0.1" {
		t.Errorf("NET.WIFI: %s", f.Redacted())
	}
	if f := c.call(protocol.VerbNetWiFi); f.String("arg") != "ssid" {
		t.Errorf("NET.WIFI without ssid: %s", f.Redacted())
	}
}

func TestDPSRequestMatchesReference(t *testing.T) {
	payload := `{"modelId":"dtmi:x;1","n":[1,2]}`
	for _, d := range Dialects() {
		t.Run(d, func(t *testing.T) {
			_, c := boot(t, Config{Seed: 8, Dialect: d})
			dl := reference.Dialect(d)
			for _, tc := range []struct {
				name     string
				endpoint string
				port     int
				keyArg   protocol.Arg
				key      string
				payload  string
			}{
				{"device key", "global.azure-devices-provisioning.net", 443, protocol.String("key", katDevKey), katDevKey, ""},
				{"group key, port", "127.0.0.1", 8443, protocol.String("group_key", katGroupKey), katDevKey, payload},
			} {
				t.Run(tc.name, func(t *testing.T) {
					c.ok(protocol.VerbDPSConfig, protocol.String("host", tc.endpoint), protocol.Int("port", int64(tc.port)))
					args := []protocol.Arg{protocol.String("id_scope", testScope), protocol.String("reg_id", katRegID), tc.keyArg, protocol.Int("expiry", 1900000000)}
					if tc.payload != "" {
						args = append(args, protocol.String("payload", tc.payload))
					}
					f := c.ok(protocol.VerbDPSRequest, args...)
					got := c.result(f, "request")
					sas, err := reference.NewSAS(reference.SASParams{Dialect: dl, IDScope: testScope, RegistrationID: katRegID,
						Key: tc.key, Expiry: 1900000000, KeyName: dl.DefaultKeyName()})
					if err != nil {
						t.Fatal(err)
					}
					ep := tc.endpoint
					if tc.port != 443 {
						ep += ":" + strconv.Itoa(tc.port)
					}
					want, err := reference.RegisterRequestBytes(reference.RequestParams{Endpoint: ep, IDScope: testScope,
						RegistrationID: katRegID, Token: sas.Token, Payload: json.RawMessage(tc.payload)})
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Errorf("request differs from the reference:\n got %q\nwant %q", got, want)
					}
				})
			}
			for _, bad := range []struct {
				args []protocol.Arg
				arg  string
			}{
				{[]protocol.Arg{protocol.String("id_scope", testScope), protocol.String("reg_id", "d"), protocol.Int("expiry", 5)}, "key"},
				{[]protocol.Arg{protocol.String("id_scope", testScope), protocol.String("reg_id", "d"), protocol.String("key", katDevKey), protocol.String("group_key", katGroupKey), protocol.Int("expiry", 5)}, "group_key"},
				{[]protocol.Arg{protocol.String("id_scope", testScope), protocol.String("reg_id", "d"), protocol.String("key", katDevKey), protocol.Int("expiry", 5), protocol.String("payload", "[1]")}, "payload"},
				{[]protocol.Arg{protocol.String("id_scope", "0ne/x"), protocol.String("reg_id", "d"), protocol.String("key", katDevKey), protocol.Int("expiry", 5)}, "id_scope"},
				{[]protocol.Arg{protocol.String("id_scope", testScope), protocol.String("reg_id", "d"), protocol.String("group_key", "!!"), protocol.Int("expiry", 5)}, "group_key"},
			} {
				if f := c.call(protocol.VerbDPSRequest, bad.args...); f.String("code") != string(protocol.CodeBadArg) || f.String("arg") != bad.arg {
					t.Errorf("DPS.REQUEST %v: got %s, want BAD_ARG arg=%s", bad.args, f.Redacted(), bad.arg)
				}
			}
		})
	}
}

func TestFrameErrors(t *testing.T) {
	_, c := boot(t, Config{Seed: 9})
	write := func(b []byte) {
		t.Helper()
		if _, err := c.port.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	// Unknown verb.
	if f := c.call("FLASH.ERASE"); f.String("code") != string(protocol.CodeUnknownVerb) || f.Verb != "FLASH.ERASE" {
		t.Errorf("unknown verb: %s", f.Redacted())
	}
	// Bad CRC: the board answers ERR with the seq it could read.
	good, _ := protocol.Encode(protocol.NewRequest(77, protocol.VerbPing, protocol.String("data", "x")), 0)
	bad := bytes.Replace(good, []byte("data=x"), []byte("data=y"), 1)
	write(append([]byte("junk before "), bad...))
	f, err := c.response(77, 5*time.Second)
	if err != nil || f.Kind != protocol.KindError || f.String("code") != string(protocol.CodeBadCRC) || f.Verb != protocol.VerbPing {
		t.Errorf("bad CRC: %v %v", f, err)
	}
	// Bad frame without a readable seq: seq 0, verb FRAME.
	line := []byte("@@HIL REQ x PING ")
	line = append(line, []byte("*"+crcHex(line)+"\n")...)
	write(line)
	f, err = c.response(0, 5*time.Second)
	if err != nil || f.String("code") != string(protocol.CodeBadFrame) || f.Verb != protocol.VerbFrame {
		t.Errorf("bad frame: %v %v", f, err)
	}
	// Bad escape with a readable seq.
	line = []byte("@@HIL REQ 78 PING data=%G1 ")
	line = append(line, []byte("*"+crcHex(line)+"\n")...)
	write(line)
	f, err = c.response(78, 5*time.Second)
	if err != nil || f.String("code") != string(protocol.CodeBadFrame) || f.Verb != protocol.VerbPing {
		t.Errorf("bad escape: %v %v", f, err)
	}
	// Too long: the board discards the line and answers TOO_LONG with the seq.
	long := []byte("@@HIL REQ 79 PING data=" + strings.Repeat("a", 5000) + " *00000000\n")
	write(long)
	f, err = c.response(79, 5*time.Second)
	if err != nil || f.String("code") != string(protocol.CodeTooLong) {
		t.Errorf("too long: %v %v", f, err)
	}
	// And still works.
	c.ok(protocol.VerbPing)
	// HELLO with a small host max: the board's frames stay under it.
	c.ok(protocol.VerbHello, protocol.Int("proto", 3), protocol.Int("max", 300))
	p := c.ok(protocol.VerbPing, protocol.String("data", strings.Repeat("z", 1000)))
	if p.String("data.blob") == "" {
		t.Errorf("PING of 1000 bytes with host max 300 not moved to a blob: %s", p.Redacted())
	}
	if f := c.call(protocol.VerbHello, protocol.Int("proto", 0)); f.String("arg") != "proto" {
		t.Errorf("HELLO proto=0: %s", f.Redacted())
	}
	if f := c.call(protocol.VerbHello, protocol.Int("max", 10)); f.String("arg") != "max" {
		t.Errorf("HELLO max=10: %s", f.Redacted())
	}
}

func crcHex(b []byte) string { return fmt.Sprintf("%08X", crc32IEEE(b)) }

// TestJunkInput feeds the board random bytes, broken frames and stray
// responses; it must keep answering.
func TestJunkInput(t *testing.T) {
	_, c := boot(t, Config{Seed: 50})
	rng := mrand.New(mrand.NewPCG(1, 2))
	for i := 0; i < 50; i++ {
		var b []byte
		switch rng.IntN(4) {
		case 0:
			b = make([]byte, rng.IntN(300))
			for j := range b {
				b[j] = byte(rng.IntN(256))
			}
		case 1:
			b, _ = protocol.Encode(protocol.NewOK(uint16(rng.IntN(100)), "PING"), 0)
		case 2:
			b, _ = protocol.Encode(protocol.NewRequest(uint16(1+rng.IntN(100)), "PING", protocol.Int("data", int64(i))), 0)
			b = b[:rng.IntN(len(b))]
		default:
			b = []byte("@@HIL REQ " + strconv.Itoa(rng.IntN(70000)) + " " + strings.Repeat("X", rng.IntN(50)) + "\r\n")
		}
		if _, err := c.port.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.port.Write([]byte("\n")); err != nil {
		t.Fatal(err)
	}
	c.seq = 60000 // above any seq the junk used
	p := c.ok(protocol.VerbPing, protocol.String("data", "still alive"))
	if p.String("data") != "still alive" {
		t.Errorf("PING after junk: %s", p.Redacted())
	}
}
