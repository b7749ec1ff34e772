package cases

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hiltest/hiltest/harness"
	"github.com/hiltest/hiltest/protocol"
	"github.com/hiltest/hiltest/reference"
)

// fakeBoard is a board for unit tests of the case logic: it answers the
// protocol's verbs in Go, using the reference for the cryptography, with
// optional firmware bugs. The end-to-end tests use the real simulator.
type fakeBoard struct {
	name    string
	dialect reference.Dialect
	bugs    map[string]bool

	mu       sync.Mutex
	setAt    time.Time
	setValue int64
	clockSet bool
	boot     time.Time
	dps      dpsConfig
	pool     *x509.CertPool
	blobs    map[string][]byte
}

// fakeBugs are the firmware bugs the fake board can have.
var fakeBugs = []string{"sign-with-group-key", "derive-from-text", "sr-not-encoded", "sig-not-encoded", "no-skn",
	"unset-clock", "wrong-dialect", "expiry-32bit", "ignore-retry-after", "misreport-retry-after", "wrong-api-version",
	"body-regid-lowercase", "truncated-token"}

func newFakeBoard(name string, d reference.Dialect, bugs ...string) *fakeBoard {
	b := &fakeBoard{name: name, dialect: d, bugs: map[string]bool{}, boot: time.Now(), blobs: map[string][]byte{},
		dps: dpsConfig{Host: reference.DefaultEndpoint, Port: 443, APIVersion: reference.DefaultAPIVersion}}
	for _, x := range bugs {
		b.bugs[x] = true
	}
	return b
}

func (b *fakeBoard) Name() string { return b.name }

func (b *fakeBoard) Info() harness.BoardInfo {
	return harness.BoardInfo{Proto: 1, Firmware: "fake-agent", FirmwareVersion: "0.1.0", Board: "fake", Chip: "ESP32",
		MAC: "24:0A:C4:00:00:01", MaxFrame: 1024, BlobMax: 8192, Dialect: string(b.dialect),
		Caps: []string{"ping", "reset", "time", "derive", "sas", "dps.request", "dps.register", "tls.ca", "net.wifi", "dps.config", "blob"}}
}

func (b *fakeBoard) Reset(context.Context) error   { return nil }
func (b *fakeBoard) TakeOutput() []harness.LogLine { return nil }

var fakeArgs = map[string][]string{
	protocol.VerbPing:        {"data"},
	protocol.VerbTimeSet:     {"unix"},
	protocol.VerbTimeGet:     {},
	protocol.VerbDerive:      {"group_key", "reg_id"},
	protocol.VerbSAS:         {"id_scope", "reg_id", "resource", "key", "expiry", "ttl", "policy"},
	protocol.VerbDPSConfig:   {"host", "port", "api_version"},
	protocol.VerbDPSRequest:  {"id_scope", "reg_id", "key", "group_key", "expiry", "ttl", "payload"},
	protocol.VerbDPSRegister: {"id_scope", "reg_id", "key", "group_key", "expiry", "ttl", "payload", "timeout"},
	protocol.VerbTLSCA:       {"pem"},
	protocol.VerbBlobPut:     {"name", "off", "data", "total"},
	protocol.VerbBlobGet:     {"name", "off", "max"},
	protocol.VerbNetWiFi:     {"ssid", "password", "timeout"},
	protocol.VerbReset:       {},
}

func badArg(verb, arg, msg string) error {
	return protocol.NewError(1, verb, protocol.CodeBadArg, msg, protocol.String("arg", arg)).Err()
}

func (b *fakeBoard) Call(ctx context.Context, verb string, args ...protocol.Arg) (*protocol.Frame, error) {
	allowed, ok := fakeArgs[verb]
	if !ok {
		return nil, protocol.NewError(1, verb, protocol.CodeUnknownVerb, "unknown verb").Err()
	}
	a := map[string]string{}
	for _, x := range args {
		if !slices.Contains(allowed, x.Key) {
			return nil, badArg(verb, x.Key, "unknown argument")
		}
		a[x.Key] = string(x.Value)
	}
	has := func(k string) bool { _, ok := a[k]; return ok }
	ok1 := func(res ...protocol.Arg) (*protocol.Frame, error) { return protocol.NewOK(1, verb, res...), nil }
	b.mu.Lock()
	defer b.mu.Unlock()
	switch verb {
	case protocol.VerbPing:
		return ok1(protocol.String("data", a["data"]))
	case protocol.VerbTimeSet:
		n, err := strconv.ParseInt(a["unix"], 10, 64)
		if err != nil {
			return nil, badArg(verb, "unix", "not a number")
		}
		if !b.bugs["unset-clock"] {
			b.setAt, b.setValue, b.clockSet = time.Now(), n, true
			return ok1(protocol.Int("unix", n))
		}
		return ok1(protocol.Int("unix", n)) // claims it, but the clock keeps running from boot
	case protocol.VerbTimeGet:
		set := "0"
		if b.clockSet {
			set = "1"
		}
		return ok1(protocol.Int("unix", b.now()), protocol.String("set", set))
	case protocol.VerbDerive:
		if _, err := reference.DecodeKey(a["group_key"]); err != nil {
			return nil, badArg(verb, "group_key", err.Error())
		}
		if !has("reg_id") || reference.ValidateRegistrationID(a["reg_id"]) != nil {
			return nil, badArg(verb, "reg_id", "missing or invalid")
		}
		return ok1(protocol.String("device_key", b.derive(a["group_key"], a["reg_id"])))
	case protocol.VerbSAS:
		if _, err := reference.DecodeKey(a["key"]); err != nil {
			return nil, badArg(verb, "key", err.Error())
		}
		se, err := b.expiry(verb, a)
		if err != nil {
			return nil, err
		}
		kn := b.emitDialect().DefaultKeyName()
		if p, ok := a["policy"]; ok {
			kn = p
		}
		sr, sts, sig, tok := b.token(a["id_scope"], a["reg_id"], a["resource"], a["key"], se, kn)
		return ok1(protocol.String("sr", sr), protocol.String("sts", sts), protocol.String("sig", sig),
			protocol.Int("se", seOf(sts)), protocol.String("token", tok))
	case protocol.VerbDPSConfig:
		if has("port") {
			p, err := strconv.Atoi(a["port"])
			if err != nil || p < 1 || p > 65535 {
				return nil, badArg(verb, "port", "not a port")
			}
			b.dps.Port = p
		}
		if has("host") {
			b.dps.Host = a["host"]
		}
		if has("api_version") {
			b.dps.APIVersion = a["api_version"]
		}
		return ok1(protocol.String("host", b.dps.Host), protocol.Int("port", int64(b.dps.Port)), protocol.String("api_version", b.dps.APIVersion))
	case protocol.VerbDPSRequest:
		raw, _, err := b.request(verb, a)
		if err != nil {
			return nil, err
		}
		return ok1(protocol.Bytes("request", raw))
	case protocol.VerbDPSRegister:
		return b.register(ctx, a)
	case protocol.VerbTLSCA:
		n, rest := 0, []byte(a["pem"])
		pool := x509.NewCertPool()
		for {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, badArg(verb, "pem", err.Error())
			}
			pool.AddCert(c)
			n++
		}
		if n == 0 {
			return nil, badArg(verb, "pem", "no certificate")
		}
		b.pool = pool
		return ok1(protocol.Int("certs", int64(n)))
	case protocol.VerbBlobPut:
		off, _ := strconv.Atoi(a["off"])
		if off == 0 {
			b.blobs[a["name"]] = nil
		}
		b.blobs[a["name"]] = append(b.blobs[a["name"]][:off], a["data"]...)
		return ok1(protocol.String("name", a["name"]), protocol.Int("len", int64(len(b.blobs[a["name"]]))))
	case protocol.VerbBlobGet:
		off, _ := strconv.Atoi(a["off"])
		max := 512
		if has("max") {
			max, _ = strconv.Atoi(a["max"])
		}
		data := b.blobs[a["name"]]
		end := min(len(data), off+max)
		return ok1(protocol.String("name", a["name"]), protocol.Bytes("data", data[off:end]), protocol.Int("total", int64(len(data))))
	case protocol.VerbNetWiFi:
		return ok1(protocol.String("ip", "127.0.0.1"))
	case protocol.VerbReset:
		b.clockSet = false
		return ok1()
	}
	return nil, protocol.NewError(1, verb, protocol.CodeInternal, "not implemented").Err()
}

func seOf(sts string) int64 {
	_, se, _ := strings.Cut(sts, "\n")
	n, _ := strconv.ParseInt(se, 10, 64)
	return n
}

func (b *fakeBoard) now() int64 {
	if b.clockSet {
		return b.setValue + int64(time.Since(b.setAt)/time.Second)
	}
	return 5 + int64(time.Since(b.boot)/time.Second)
}

func (b *fakeBoard) emitDialect() reference.Dialect {
	if b.bugs["wrong-dialect"] {
		return reference.DialectAzureIoTSDKC
	}
	return b.dialect
}

func (b *fakeBoard) derive(groupKey, regID string) string {
	if b.bugs["derive-from-text"] {
		return hmacB64([]byte(groupKey), regID)
	}
	k, _ := reference.DeriveDeviceKey(groupKey, regID)
	return k
}

func (b *fakeBoard) expiry(verb string, a map[string]string) (int64, error) {
	var se int64
	switch {
	case a["expiry"] != "":
		n, err := strconv.ParseInt(a["expiry"], 10, 64)
		if err != nil || n <= 0 {
			return 0, badArg(verb, "expiry", "not a positive number")
		}
		se = n
	case a["ttl"] != "":
		n, err := strconv.ParseInt(a["ttl"], 10, 64)
		if err != nil {
			return 0, badArg(verb, "ttl", "not a number")
		}
		se = b.now() + n
	default:
		return 0, badArg(verb, "expiry", "expiry or ttl is required")
	}
	if b.bugs["expiry-32bit"] {
		se &= 0xFFFFFFFF
	}
	return se, nil
}

func (b *fakeBoard) token(scope, regID, resource, key string, se int64, kn string) (sr, sts, sig, tok string) {
	d := b.emitDialect()
	raw := resource
	if resource != "" {
		sr = d.Encode(resource)
	} else {
		raw = reference.RawResource(scope, regID)
		sr = d.Resource(scope, regID)
	}
	if b.bugs["sr-not-encoded"] {
		sr = raw
	}
	sts = reference.StringToSign(sr, se)
	sig, _ = reference.Sign(key, sts)
	encSig := d.Encode(sig)
	if b.bugs["sig-not-encoded"] {
		encSig = sig
	}
	if b.bugs["no-skn"] {
		kn = ""
	}
	tok = "SharedAccessSignature sr=" + sr + "&sig=" + encSig + "&se=" + strconv.FormatInt(se, 10)
	if kn != "" {
		tok += "&skn=" + kn
	}
	if b.bugs["truncated-token"] && len(tok) > 100 {
		tok = tok[:100]
	}
	return sr, sts, sig, tok
}

// request builds the register request bytes and returns the token too.
func (b *fakeBoard) request(verb string, a map[string]string) ([]byte, string, error) {
	if a["reg_id"] == "" {
		return nil, "", badArg(verb, "reg_id", "missing")
	}
	key := a["key"]
	if gk := a["group_key"]; gk != "" {
		key = b.derive(gk, a["reg_id"])
		if b.bugs["sign-with-group-key"] {
			key = gk
		}
	}
	if _, err := reference.DecodeKey(key); err != nil {
		return nil, "", badArg(verb, "key", err.Error())
	}
	se, err := b.expiry(verb, a)
	if err != nil {
		return nil, "", err
	}
	_, _, _, tok := b.token(a["id_scope"], a["reg_id"], "", key, se, b.emitDialect().DefaultKeyName())
	api := b.dps.APIVersion
	if b.bugs["wrong-api-version"] {
		api = "2018-11-01"
	}
	endpoint := dpsConfig{Host: b.dps.Host, Port: b.dps.Port}.endpoint()
	body := fmt.Sprintf(`{"registrationId":%q}`, a["reg_id"])
	if b.bugs["body-regid-lowercase"] {
		body = fmt.Sprintf(`{"registrationId":%q}`, strings.ToLower(a["reg_id"]))
	}
	if p := a["payload"]; p != "" {
		body = body[:len(body)-1] + `,"payload":` + p + "}"
	}
	raw := fmt.Sprintf("PUT /%s/registrations/%s/register?api-version=%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nAuthorization: %s\r\n\r\n%s",
		a["id_scope"], a["reg_id"], api, endpoint, len(body), tok, body)
	return []byte(raw), tok, nil
}

// register sends the request over TLS and polls like a firmware would.
func (b *fakeBoard) register(ctx context.Context, a map[string]string) (*protocol.Frame, error) {
	verb := protocol.VerbDPSRegister
	raw, tok, err := b.request(verb, a)
	if err != nil {
		return nil, err
	}
	if b.pool == nil {
		return nil, protocol.NewError(1, verb, protocol.CodeTLS, "no trust anchor").Err()
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: b.pool}}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	base := "https://" + dpsConfig{Host: b.dps.Host, Port: b.dps.Port}.endpoint()
	c, err := reference.ParseRequest(raw)
	if err != nil {
		return nil, protocol.NewError(1, verb, protocol.CodeInternal, err.Error()).Err()
	}
	req, _ := http.NewRequestWithContext(ctx, c.Method, base+c.Path+"?"+c.Query, bytes.NewReader(c.Body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", tok)
	var statuses, retries []string
	var op, status, hub, dev, ecode, emsg string
	for i := 0; i < 20; i++ {
		resp, err := hc.Do(req)
		if err != nil {
			return nil, protocol.NewError(1, verb, protocol.CodeNetwork, err.Error()).Err()
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		statuses = append(statuses, strconv.Itoa(resp.StatusCode))
		var st struct {
			OperationID       string `json:"operationId"`
			Status            string `json:"status"`
			ErrorCode         int    `json:"errorCode"`
			Message           string `json:"message"`
			RegistrationState *struct {
				AssignedHub  string `json:"assignedHub"`
				DeviceID     string `json:"deviceId"`
				ErrorCode    int    `json:"errorCode"`
				ErrorMessage string `json:"errorMessage"`
			} `json:"registrationState"`
		}
		_ = json.Unmarshal(body, &st)
		if resp.StatusCode >= 400 {
			status, ecode, emsg = "failed", strconv.Itoa(st.ErrorCode), st.Message
			break
		}
		if st.OperationID != "" {
			op = st.OperationID
		}
		status = st.Status
		if rs := st.RegistrationState; rs != nil {
			hub, dev = rs.AssignedHub, rs.DeviceID
			if rs.ErrorCode != 0 {
				ecode, emsg = strconv.Itoa(rs.ErrorCode), rs.ErrorMessage
			}
		}
		if status != "assigning" {
			break
		}
		wait := 2
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			wait, _ = strconv.Atoi(ra)
			if b.bugs["misreport-retry-after"] {
				ra = "0" // reports no wait whatever the DPS asked
			}
			retries = append(retries, ra)
		}
		if b.bugs["ignore-retry-after"] {
			wait = 0
		}
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			b.mu.Lock()
			return nil, protocol.NewError(1, verb, protocol.CodeTimeout, "timeout").Err()
		case <-time.After(time.Duration(wait) * time.Second):
		}
		b.mu.Lock()
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet,
			fmt.Sprintf("%s/%s/registrations/%s/operations/%s?api-version=%s", base, a["id_scope"], a["reg_id"], op, b.dps.APIVersion), nil)
		req.Header.Set("Authorization", tok)
	}
	res := []protocol.Arg{protocol.String("op", op), protocol.String("status", status), protocol.String("hub", hub),
		protocol.String("device_id", dev), protocol.String("http", strings.Join(statuses, ",")),
		protocol.String("retry_after", strings.Join(retries, ","))}
	if ecode != "" {
		res = append(res, protocol.String("error_code", ecode), protocol.String("error_msg", emsg))
	}
	return protocol.NewOK(1, verb, res...), nil
}
