package sim

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/hiltest/hiltest/protocol"
)

// plan is what the fault triggers decided for one request's answer.
type plan struct {
	n                              int
	slow                           time.Duration
	overlong, noise, corrupt, drop bool
	brownout                       bool
	seed                           uint64
}

// worker runs one request. It owns the session while it runs; the state
// machine waits for done before it touches the session or starts a new boot.
type worker struct {
	b      *Board
	s      *session
	gen    uint64
	req    *protocol.Frame
	pl     plan
	rng    *rand.Rand
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func startWorker(b *Board, s *session, gen uint64, req *protocol.Frame, pl plan) *worker {
	ctx, cancel := context.WithCancel(context.Background())
	w := &worker{b: b, s: s, gen: gen, req: req, pl: pl, rng: rand.New(rand.NewPCG(pl.seed, 7)),
		ctx: ctx, cancel: cancel, done: make(chan struct{})}
	b.wg.Add(1)
	go w.run()
	return w
}

// inline reports whether the request can be answered by the state machine
// itself: a verb that neither blocks nor waits (PING) whose answer the plan
// does not delay (slow) or lose to a brown-out. The answer is then the same
// as a worker's, without a goroutine and two hand-offs per request; the
// machine is never busy with such a request, as a worker is done with it
// before the next byte could arrive.
func inline(req *protocol.Frame, pl plan) bool {
	return req.Verb == protocol.VerbPing && pl.slow == 0 && !pl.brownout
}

// runInline answers req on the caller's goroutine (see inline).
func runInline(b *Board, s *session, gen uint64, req *protocol.Frame, pl plan) {
	w := worker{b: b, s: s, gen: gen, req: req, pl: pl, rng: rand.New(rand.NewPCG(pl.seed, 7)),
		ctx: context.Background(), cancel: func() {}}
	resp, _ := w.handle()
	w.answer(resp)
}

func (w *worker) run() {
	defer w.b.wg.Done()
	var ev evWorkDone
	func() {
		defer close(w.done)
		defer w.cancel()
		resp, rb := w.handle()
		if w.pl.slow > 0 && w.ctx.Err() == nil {
			w.b.fault("slow", "request %d (%s %d): answer delayed by %s", w.pl.n, w.req.Verb, w.req.Seq, w.pl.slow)
			t := time.NewTimer(w.pl.slow)
			select {
			case <-t.C:
			case <-w.ctx.Done():
				t.Stop()
			}
		}
		if w.ctx.Err() != nil {
			return // cut off by a reset: no answer
		}
		ev = evWorkDone{w: w, resp: resp}
		if rb {
			ev.reboot = "sw"
		}
	}()
	if ev.w != nil {
		w.b.send(ev)
	}
}

// log prints an ESP-IDF style log line.
func (w *worker) log(level byte, tag, format string, args ...any) {
	msg := format
	if len(args) > 0 {
		msg = sprintf(format, args...)
	}
	_ = w.b.out.write(w.gen, []byte(w.s.logLine(level, tag, msg)))
}

// event prints an event frame.
func (w *worker) event(name string, args ...protocol.Arg) {
	_ = w.b.out.event(w.gen, name, args...)
}

// answer prints the response, with the faults the plan decided. The state
// machine calls it once the worker is done, so that a host that sends its
// next request as soon as it sees the answer never finds the board busy.
func (w *worker) answer(resp *protocol.Frame) {
	b := w.b
	if w.pl.overlong {
		line := overlongLine(w.rng, w.s)
		b.fault("overlong", "request %d (%s %d): %d-byte log line before the answer", w.pl.n, w.req.Verb, w.req.Seq, len(line))
		_ = b.out.write(w.gen, line)
	}
	if w.pl.noise {
		j := junk(w.rng)
		b.fault("noise", "request %d (%s %d): %d bytes of junk before the answer", w.pl.n, w.req.Verb, w.req.Seq, len(j))
		_ = b.out.write(w.gen, j)
	}
	if !w.pl.corrupt && !w.pl.drop {
		if err := b.out.frame(w.gen, resp, nil); err != nil {
			b.note("answer %s %d: %v", w.req.Verb, w.req.Seq, err)
		}
		return
	}
	// Damage the encoded answer; log the fault before the host can see it.
	line, err := protocol.Encode(resp, b.out.frameMax())
	if err != nil {
		b.note("answer %s %d: %v", w.req.Verb, w.req.Seq, err)
		return
	}
	var detail string
	if w.pl.corrupt {
		line = mangleCorrupt(w.rng, &detail)(line)
		b.fault("corrupt", "request %d (%s %d): answer %s", w.pl.n, w.req.Verb, w.req.Seq, detail)
	} else {
		line = mangleDrop(w.rng, &detail)(line)
		b.fault("drop", "request %d (%s %d): answer %s", w.pl.n, w.req.Verb, w.req.Seq, detail)
	}
	_ = b.out.write(w.gen, line)
}

func overlongLine(rng *rand.Rand, s *session) []byte {
	var b bytes.Buffer
	b.WriteString(strings.TrimSuffix(s.logLine('E', "hexdump", "0x3ffb4a10 "), "\r\n"))
	const hx = "0123456789abcdef"
	for b.Len() < MaxFrame+512+rng.IntN(2048) {
		c := byte(rng.Uint32())
		b.WriteByte(hx[c>>4])
		b.WriteByte(hx[c&15])
		b.WriteByte(' ')
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// argError is a BAD_ARG (or other) answer.
type argError struct {
	code protocol.Code
	arg  string
	msg  string
	more []protocol.Arg
}

func (e *argError) Error() string { return e.msg }

func badArg(arg, format string, args ...any) error {
	return &argError{code: protocol.CodeBadArg, arg: arg, msg: sprintf(format, args...)}
}

func failure(code protocol.Code, format string, args ...any) error {
	return &argError{code: code, msg: sprintf(format, args...)}
}

// args is a request's arguments after K.blob indirection.
type args struct {
	v     map[string][]byte
	order []string
}

func (a *args) has(k string) bool   { _, ok := a.v[k]; return ok }
func (a *args) str(k string) string { return string(a.v[k]) }

// allow checks that only the given keys are present.
func (a *args) allow(keys ...string) error {
	for _, k := range a.order {
		ok := false
		for _, x := range keys {
			if k == x {
				ok = true
				break
			}
		}
		if !ok {
			return badArg(k, "unknown argument %q", k)
		}
	}
	return nil
}

func (a *args) need(k string) (string, error) {
	v, ok := a.v[k]
	if !ok {
		return "", badArg(k, "missing argument %q", k)
	}
	return string(v), nil
}

// int parses an optional decimal argument within [lo, hi].
func (a *args) int(k string, def, lo, hi int64) (int64, error) {
	v, ok := a.v[k]
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, badArg(k, "%s=%q is not a decimal integer", k, v)
	}
	if n < lo || n > hi {
		return 0, badArg(k, "%s=%d is out of range %d..%d", k, n, lo, hi)
	}
	return n, nil
}

// resolve applies K.blob indirection.
func (w *worker) resolve(f *protocol.Frame) (*args, error) {
	a := &args{v: map[string][]byte{}}
	for _, x := range f.Args {
		k, v := x.Key, x.Value
		if base, ok := strings.CutSuffix(k, ".blob"); ok {
			data, found := w.s.blobs[string(v)]
			if !found {
				return nil, badArg(k, "no blob named %q", v)
			}
			k, v = base, data
		}
		if a.has(k) {
			return nil, badArg(k, "argument %q given twice (directly and as a blob)", k)
		}
		a.v[k] = v
		a.order = append(a.order, k)
	}
	return a, nil
}

// handle runs the request and returns the answer; reboot asks for a soft reboot.
func (w *worker) handle() (resp *protocol.Frame, reboot bool) {
	f := w.req
	a, err := w.resolve(f)
	var res []protocol.Arg
	if err == nil {
		switch f.Verb {
		case protocol.VerbHello:
			res, err = w.hello(a)
		case protocol.VerbPing:
			if err = a.allow("data"); err == nil {
				res = []protocol.Arg{protocol.Bytes("data", a.v["data"])}
			}
		case protocol.VerbReset:
			if err = a.allow(); err == nil {
				w.log('I', "hil", "restart requested")
				reboot = true
			}
		case protocol.VerbTimeSet:
			res, err = w.timeSet(a)
		case protocol.VerbTimeGet:
			if err = a.allow(); err == nil {
				res = []protocol.Arg{protocol.Int("unix", w.s.now()), protocol.Int("set", int64(b2i(w.s.clockSet)))}
			}
		case protocol.VerbDerive:
			res, err = w.derive(a)
		case protocol.VerbSAS:
			res, err = w.sas(a)
		case protocol.VerbDPSConfig:
			res, err = w.dpsConfig(a)
		case protocol.VerbDPSRequest:
			res, err = w.dpsRequest(a)
		case protocol.VerbDPSRegister:
			res, err = w.dpsRegister(a)
		case protocol.VerbTLSCA:
			res, err = w.tlsCA(a)
		case protocol.VerbNetWiFi:
			res, err = w.netWiFi(a)
		case protocol.VerbBlobPut:
			res, err = w.blobPut(a)
		case protocol.VerbBlobGet:
			res, err = w.blobGet(a)
		default:
			err = failure(protocol.CodeUnknownVerb, "unknown verb %s", f.Verb)
		}
	}
	if err != nil {
		var ae *argError
		if !errors.As(err, &ae) {
			ae = &argError{code: protocol.CodeInternal, msg: err.Error()}
		}
		more := ae.more
		if ae.arg != "" {
			more = append([]protocol.Arg{protocol.String("arg", ae.arg)}, more...)
		}
		w.log('E', "hil", "%s %d: %s: %s", f.Verb, f.Seq, ae.code, ae.msg)
		return protocol.NewError(f.Seq, f.Verb, ae.code, ae.msg, more...), false
	}
	resp = protocol.NewOK(f.Seq, f.Verb, res...)
	if err := w.fit(resp); err != nil {
		return protocol.NewError(f.Seq, f.Verb, protocol.CodeInternal, err.Error()), false
	}
	return resp, reboot
}

// fit moves the largest results into blobs until the answer fits in a frame
// (K becomes K.blob=NAME K.len=L).
func (w *worker) fit(resp *protocol.Frame) error {
	max := w.b.out.frameMax()
	for protocol.EncodedFrameLen(resp) > max {
		big := -1
		for i, x := range resp.Args {
			if strings.HasSuffix(x.Key, ".blob") || strings.HasSuffix(x.Key, ".len") {
				continue
			}
			if big < 0 || protocol.EncodedLen(x.Value) > protocol.EncodedLen(resp.Args[big].Value) {
				big = i
			}
		}
		if big < 0 {
			return errors.New("answer does not fit in a frame")
		}
		k := resp.Args[big].Key
		name := blobNameFor(k)
		if err := w.storeBlob(name, resp.Args[big].Value); err != nil {
			return err
		}
		n := len(resp.Args[big].Value)
		rest := append([]protocol.Arg{}, resp.Args[:big]...)
		rest = append(rest, protocol.String(k+".blob", name), protocol.Int(k+".len", int64(n)))
		resp.Args = append(rest, resp.Args[big+1:]...)
	}
	return nil
}

// blobNameFor names the result blob of key k: "r_" and k with '.' as '_', at most 16 characters.
func blobNameFor(k string) string {
	n := "r_" + strings.ReplaceAll(k, ".", "_")
	if len(n) > 16 {
		n = n[:16]
	}
	return n
}

func validBlobName(n string) bool {
	if len(n) < 1 || len(n) > 16 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func (w *worker) storeBlob(name string, data []byte) error {
	if len(data) > BlobMax {
		return failure(protocol.CodeInternal, "result of %d bytes exceeds blob_max %d", len(data), BlobMax)
	}
	if _, ok := w.s.blobs[name]; !ok && len(w.s.blobs) >= MaxBlobs {
		return failure(protocol.CodeInternal, "out of blob slots (%d in use)", MaxBlobs)
	}
	w.s.blobs[name] = bytes.Clone(data)
	return nil
}

func (w *worker) hello(a *args) ([]protocol.Arg, error) {
	if err := a.allow("proto", "max"); err != nil {
		return nil, err
	}
	proto, err := a.int("proto", protocol.Version, 0, 1<<31)
	if err != nil {
		return nil, err
	}
	if proto < 1 {
		return nil, badArg("proto", "no protocol version in common (host speaks up to %d, board speaks 1)", proto)
	}
	hostMax, err := a.int("max", MaxFrame, protocol.MinMaxFrame, 1<<31)
	if err != nil {
		return nil, err
	}
	w.b.out.setMax(w.gen, int(hostMax))
	cfg := w.b.cfg
	caps := []string{protocol.CapPing, protocol.CapReset, protocol.CapTime, protocol.CapDerive, protocol.CapSAS,
		protocol.CapDPSRequest, protocol.CapDPSRegister, protocol.CapTLSCA, protocol.CapNetWiFi,
		protocol.CapDPSConfig, protocol.CapBlob}
	return []protocol.Arg{
		protocol.Int("proto", protocol.Version),
		protocol.String("fw", cfg.Firmware),
		protocol.String("fw_version", cfg.FirmwareVersion),
		protocol.String("board", cfg.BoardName),
		protocol.String("chip", cfg.Chip),
		protocol.String("mac", cfg.MAC),
		protocol.Int("max", MaxFrame),
		protocol.Int("blob_max", BlobMax),
		protocol.String("dialect", cfg.Dialect),
		protocol.String("caps", strings.Join(caps, ",")),
	}, nil
}

func (w *worker) timeSet(a *args) ([]protocol.Arg, error) {
	if err := a.allow("unix"); err != nil {
		return nil, err
	}
	if _, err := a.need("unix"); err != nil {
		return nil, err
	}
	n, err := a.int("unix", 0, 0, 1<<40)
	if err != nil {
		return nil, err
	}
	set := float64(n)
	if sk := w.b.faults.Skew; sk != 0 {
		set += sk.Seconds()
		w.b.fault("skew", "TIME.SET unix=%d: clock set to %d (skew %s)", n, int64(set), sk)
	}
	w.s.clockSet, w.s.clockAt, w.s.clockUnix = true, time.Now(), set
	w.log('I', "time", "clock set to %d", int64(set))
	return []protocol.Arg{protocol.Int("unix", w.s.now())}, nil
}

func (w *worker) tlsCA(a *args) ([]protocol.Arg, error) {
	if err := a.allow("pem"); err != nil {
		return nil, err
	}
	data, err := a.need("pem")
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	n := 0
	rest := []byte(data)
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, badArg("pem", "certificate %d: %v", n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, badArg("pem", "no PEM certificate found")
	}
	if data != w.s.caPEM {
		// Sessions made under another anchor are not resumed.
		w.s.tlsCache = tls.NewLRUClientSessionCache(4)
	}
	w.s.roots, w.s.certs, w.s.caPEM = pool, n, data
	w.log('I', "tls", "%d trust anchor(s) loaded", n)
	return []protocol.Arg{protocol.Int("certs", int64(n))}, nil
}

func (w *worker) netWiFi(a *args) ([]protocol.Arg, error) {
	if err := a.allow("ssid", "password", "timeout"); err != nil {
		return nil, err
	}
	ssid, err := a.need("ssid")
	if err != nil {
		return nil, err
	}
	if ssid == "" || len(ssid) > 32 {
		return nil, badArg("ssid", "ssid must be 1-32 bytes")
	}
	if len(a.v["password"]) > 64 {
		return nil, badArg("password", "password longer than 64 bytes")
	}
	if _, err := a.int("timeout", 20, 1, 3600); err != nil {
		return nil, err
	}
	w.log('I', "wifi", "connected to %s, channel 6", ssid)
	w.log('I', "esp_netif_handlers", "sta ip: 127.0.0.1, mask: 255.0.0.0, gw: 127.0.0.1")
	return []protocol.Arg{protocol.String("ip", "127.0.0.1")}, nil
}

func (w *worker) blobPut(a *args) ([]protocol.Arg, error) {
	if err := a.allow("name", "off", "data", "total"); err != nil {
		return nil, err
	}
	name, err := a.need("name")
	if err != nil {
		return nil, err
	}
	if !validBlobName(name) {
		return nil, badArg("name", "blob name %q: want 1-16 characters a-z 0-9 _", name)
	}
	if _, err := a.need("off"); err != nil {
		return nil, err
	}
	off, err := a.int("off", 0, 0, BlobMax)
	if err != nil {
		return nil, err
	}
	if _, err := a.need("data"); err != nil {
		return nil, err
	}
	data := a.v["data"]
	total, err := a.int("total", -1, 0, BlobMax)
	if err != nil {
		return nil, err
	}
	cur, exists := w.s.blobs[name]
	if off == 0 {
		cur = nil // offset 0 truncates the blob first
	}
	if int(off) > len(cur) {
		return nil, badArg("off", "offset %d is past the end of blob %q (%d bytes)", off, name, len(cur))
	}
	size := max(len(cur), int(off)+len(data))
	if size > BlobMax {
		return nil, badArg("data", "blob %q would hold %d bytes, blob_max is %d", name, size, BlobMax)
	}
	if total >= 0 && int64(size) > total {
		return nil, badArg("total", "blob %q would hold %d bytes, more than total=%d", name, size, total)
	}
	if !exists && len(w.s.blobs) >= MaxBlobs {
		return nil, failure(protocol.CodeInternal, "out of blob slots (%d in use)", MaxBlobs)
	}
	nb := make([]byte, size)
	copy(nb, cur)
	copy(nb[off:], data)
	w.s.blobs[name] = nb
	return []protocol.Arg{protocol.String("name", name), protocol.Int("len", int64(len(nb)))}, nil
}

func (w *worker) blobGet(a *args) ([]protocol.Arg, error) {
	if err := a.allow("name", "off", "max"); err != nil {
		return nil, err
	}
	name, err := a.need("name")
	if err != nil {
		return nil, err
	}
	data, ok := w.s.blobs[name]
	if !ok {
		return nil, badArg("name", "no blob named %q", name)
	}
	off, err := a.int("off", 0, 0, BlobMax)
	if err != nil {
		return nil, err
	}
	if int(off) > len(data) {
		return nil, badArg("off", "offset %d is past the end of blob %q (%d bytes)", off, name, len(data))
	}
	limit, err := a.int("max", int64(len(data)), 1, BlobMax)
	if err != nil {
		return nil, err
	}
	chunk := data[off:]
	if int64(len(chunk)) > limit {
		chunk = chunk[:limit]
	}
	// As many bytes as fit in one frame.
	probe := protocol.NewOK(w.req.Seq, w.req.Verb, protocol.String("name", name), protocol.Bytes("data", nil), protocol.Int("total", int64(len(data))))
	room := w.b.out.frameMax() - protocol.EncodedFrameLen(probe)
	n := 0
	for n < len(chunk) {
		c := 1
		if ch := chunk[n]; ch < 0x21 || ch > 0x7e || ch == '%' {
			c = 3
		}
		if room < c {
			break
		}
		room -= c
		n++
	}
	return []protocol.Arg{protocol.String("name", name), protocol.Bytes("data", chunk[:n]), protocol.Int("total", int64(len(data)))}, nil
}

// keyText is how the firmware stores a base64 key it was given.
func (w *worker) keyText(k string) string {
	if w.b.bugs[BugTruncateKey64] && len(k) > KeyBuffer {
		return k[:KeyBuffer]
	}
	return k
}

// deriveKey computes the device key from a group key.
func (w *worker) deriveKey(arg, groupKey, regID string) (string, error) {
	groupKey = w.keyText(groupKey)
	var key []byte
	if w.b.bugs[BugDeriveFromBase64Text] {
		if groupKey == "" {
			return "", badArg(arg, "key is empty")
		}
		key = []byte(groupKey)
	} else {
		k, err := decodeKey(groupKey)
		if err != nil {
			return "", badArg(arg, "%v", err)
		}
		key = k
	}
	return hmacB64(key, regID), nil
}

func (w *worker) derive(a *args) ([]protocol.Arg, error) {
	if err := a.allow("group_key", "reg_id"); err != nil {
		return nil, err
	}
	gk, err := a.need("group_key")
	if err != nil {
		return nil, err
	}
	id, err := a.need("reg_id")
	if err != nil {
		return nil, err
	}
	if err := validRegID(id); err != nil {
		return nil, badArg("reg_id", "%v", err)
	}
	dk, err := w.deriveKey("group_key", gk, id)
	if err != nil {
		return nil, err
	}
	return []protocol.Arg{protocol.String("device_key", dk)}, nil
}

// expiry reads expiry or ttl.
func (w *worker) expiry(a *args) (int64, error) {
	switch {
	case a.has("expiry") && a.has("ttl"):
		return 0, badArg("ttl", "give either expiry or ttl, not both")
	case a.has("expiry"):
		return a.int("expiry", 0, 1, 1<<40)
	case a.has("ttl"):
		ttl, err := a.int("ttl", 0, 1, 1<<40)
		if err != nil {
			return 0, err
		}
		if w.b.bugs[BugUnsetClockExpiry] {
			return int64(w.s.uptime()/time.Second) + ttl, nil
		}
		return w.s.now() + ttl, nil
	}
	return 0, badArg("expiry", "missing argument \"expiry\" (or \"ttl\")")
}

// tokenFor builds a token for the resource, with the seeded bugs applied.
// raw != "" means a raw resource, encoded whole.
func (w *worker) tokenFor(scope, regID, raw, key string, se int64, skn string) (sasParts, error) {
	d := w.b.cfg.Dialect
	var sr string
	switch {
	case raw != "" && w.b.bugs[BugSRNotEncoded]:
		sr = raw
	case raw != "":
		sr = urlenc(d, raw)
	default:
		if w.b.bugs[BugWrongResource] {
			scope = WrongScope
		}
		if w.b.bugs[BugSRNotEncoded] {
			sr = scope + "/registrations/" + regID
		} else {
			sr = encodeResource(d, scope, regID)
		}
	}
	kb, err := decodeKey(w.keyText(key))
	if err != nil {
		return sasParts{}, badArg("key", "%v", err)
	}
	sts := sr + "\n" + strconv.FormatInt(se, 10)
	sig := hmacB64(kb, sts)
	sigField := urlenc(d, sig)
	if w.b.bugs[BugSigNotEncoded] {
		sigField = sig
	}
	if w.b.bugs[BugMissingSKN] {
		skn = ""
	}
	return sasParts{sr: sr, sts: sts, sig: sig, se: se, token: buildToken(sr, sigField, se, skn)}, nil
}

func (w *worker) sas(a *args) ([]protocol.Arg, error) {
	if err := a.allow("id_scope", "reg_id", "resource", "key", "expiry", "ttl", "policy"); err != nil {
		return nil, err
	}
	var scope, id, raw string
	if a.has("resource") {
		if a.has("id_scope") || a.has("reg_id") {
			return nil, badArg("resource", "give either resource or id_scope and reg_id, not both")
		}
		raw = a.str("resource")
		if raw == "" {
			return nil, badArg("resource", "resource is empty")
		}
	} else {
		var err error
		if scope, err = a.need("id_scope"); err != nil {
			return nil, err
		}
		if err := validScope(scope); err != nil {
			return nil, badArg("id_scope", "%v", err)
		}
		if id, err = a.need("reg_id"); err != nil {
			return nil, err
		}
		if err := validRegID(id); err != nil {
			return nil, badArg("reg_id", "%v", err)
		}
	}
	key, err := a.need("key")
	if err != nil {
		return nil, err
	}
	se, err := w.expiry(a)
	if err != nil {
		return nil, err
	}
	skn := defaultPolicy(w.b.cfg.Dialect)
	if a.has("policy") {
		skn = a.str("policy")
		if strings.ContainsAny(skn, "&= ") {
			return nil, badArg("policy", "policy %q contains '&', '=' or a space", skn)
		}
	}
	t, err := w.tokenFor(scope, id, raw, key, se, skn)
	if err != nil {
		return nil, err
	}
	return []protocol.Arg{
		protocol.String("sr", t.sr),
		protocol.String("sts", t.sts),
		protocol.String("sig", t.sig),
		protocol.Int("se", t.se),
		protocol.String("token", t.token),
	}, nil
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
