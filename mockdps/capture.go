package mockdps

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Request is one HTTP request exactly as the mock received it.
type Request struct {
	// parsed is false while Method, RequestURI, Proto and Header still have
	// to be parsed from Raw (done, once, when the capture is first read,
	// off the hot path).
	parsed bool

	Time       time.Time
	RemoteAddr string
	Method     string
	RequestURI string
	Proto      string
	// Header holds the header fields as received: original names, values
	// and order (duplicates kept).
	Header [][2]string
	Body   []byte
	// Raw is the request line, header block and body exactly as read from
	// the connection (after TLS decryption).
	Raw            []byte
	TLSVersion     string // "TLS1.3", ...; "" over plain HTTP
	SNI            string
	RegistrationID string // from the path, "" when the path has none
	Status         int    // response status; 0 when the connection was dropped
	// HasRetryAfter tells whether the response carried a Retry-After
	// header; RetryAfter is its value in seconds as sent (-1 without one).
	// A client polling the operation must wait that long before its next
	// request (device.json, RuntimeRegistration_RegisterDevice 202).
	HasRetryAfter bool
	RetryAfter    int
	// OperationID is the operationId of the response body: the one a
	// register request started or the one a poll reported on; "" when the
	// response named none (an error, a status lookup, a dropped connection).
	OperationID string
	Diagnosis   *Diagnosis
}

// connKey is the context key under which ConnContext stores the *recConn.
type connKey struct{}

// recConn records the bytes read from a connection so that each request can
// be captured as received: net/http parses headers into a map and loses
// their order and spelling.
type recConn struct {
	net.Conn
	tls *tls.Conn // nil over plain HTTP

	mu   sync.Mutex
	buf  []byte // bytes read and not yet attributed to a request
	skip int    // bytes still to drop: the unread rest of an earlier request
}

func (c *recConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		b := p[:n]
		if c.skip > 0 {
			d := min(c.skip, len(b))
			c.skip -= d
			b = b[d:]
		}
		// A peer that never completes a request cannot grow the buffer
		// beyond what net/http itself accepts (header limit, body cap).
		if len(c.buf)+len(b) <= maxRecorded {
			c.buf = append(c.buf, b...)
		}
		c.mu.Unlock()
	}
	return n, err
}

// maxRecorded bounds the bytes a connection buffers between two requests.
const maxRecorded = 1 << 20

// take removes and returns the bytes of the next request from the recorded
// stream. Requests on a keep-alive connection are sequential, so the next
// request starts at the front of the buffer; its end is found by parsing the
// header block and the body framing (Content-Length or chunked). When the
// body was not read completely (a rejected oversized body) the missing rest
// is dropped from the stream as it arrives.
func (c *recConn) take() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Clients may send stray CRLFs between requests (RFC 9112 §2.2).
	i := 0
	for i < len(c.buf) && (c.buf[i] == '\r' || c.buf[i] == '\n') {
		i++
	}
	b := c.buf[i:]
	n := requestLength(b)
	if n < 0 || n > len(b) {
		raw := bytes.Clone(b)
		if n > len(b) {
			c.skip = n - len(b)
		}
		c.buf = c.buf[:0]
		return raw
	}
	raw := bytes.Clone(b[:n])
	rest := len(b) - n
	copy(c.buf, b[n:])
	c.buf = c.buf[:rest]
	return raw
}

// nextLine returns the line of b that starts at off, without its LF or
// CRLF, and the offset after it; ok is false when no LF ends it in b.
func nextLine(b []byte, off int) (line []byte, next int, ok bool) {
	j := bytes.IndexByte(b[off:], '\n')
	if j < 0 {
		return nil, off, false
	}
	return bytes.TrimSuffix(b[off:off+j], []byte{'\r'}), off + j + 1, true
}

// requestLength returns the length of the HTTP/1.x request at the start of
// b, or -1 when it cannot be determined from b (incomplete header block,
// incomplete chunked body, malformed framing). The result may exceed len(b)
// when the Content-Length body is not all there. It does not allocate.
func requestLength(b []byte) int {
	cl, chunked := 0, false
	off, line := 0, 0
	for {
		l, next, ok := nextLine(b, off)
		if !ok {
			return -1
		}
		off = next
		if len(l) == 0 {
			if line == 0 {
				continue // stray empty lines before the request line
			}
			break
		}
		line++
		if line == 1 {
			continue
		}
		i := bytes.IndexByte(l, ':')
		if i <= 0 {
			continue
		}
		name, value := l[:i], bytes.TrimSpace(l[i+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, ok := atoiBytes(value)
			if !ok {
				return -1
			}
			cl = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		}
	}
	if !chunked {
		return off + cl
	}
	n := chunkedLength(b[off:])
	if n < 0 {
		return -1
	}
	return off + n
}

// atoiBytes parses a non-negative decimal of at most 12 digits.
func atoiBytes(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 12 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// headerEnd finds the empty line ending the header block and returns the
// offset just after it and the header lines (without line endings).
func headerEnd(b []byte) (int, [][]byte) {
	var lines [][]byte
	off := 0
	for {
		line, next, ok := nextLine(b, off)
		if !ok {
			return -1, nil
		}
		off = next
		if len(line) == 0 {
			if len(lines) == 0 {
				continue
			}
			return off, lines
		}
		lines = append(lines, line)
	}
}

func splitHeader(l []byte) (string, string, bool) {
	i := bytes.IndexByte(l, ':')
	if i <= 0 {
		return "", "", false
	}
	return string(l[:i]), strings.TrimSpace(string(l[i+1:])), true
}

// chunkedLength returns the length of a chunked body (with trailers) at the
// start of b, or -1 if incomplete or malformed.
func chunkedLength(b []byte) int {
	off := 0
	for {
		line, next, ok := nextLine(b, off)
		if !ok {
			return -1
		}
		off = next
		if k := bytes.IndexByte(line, ';'); k >= 0 {
			line = line[:k]
		}
		size, err := strconv.ParseUint(strings.TrimSpace(string(line)), 16, 31)
		if err != nil {
			return -1
		}
		if size == 0 {
			// Trailer section up to an empty line.
			for {
				l, next, ok := nextLine(b, off)
				if !ok {
					return -1
				}
				off = next
				if len(l) == 0 {
					return off
				}
			}
		}
		off += int(size)
		if off > len(b) {
			return -1
		}
		// CRLF after the chunk data.
		if off < len(b) && b[off] == '\r' {
			off++
		}
		if off >= len(b) || b[off] != '\n' {
			return -1
		}
		off++
	}
}

// parseRaw splits captured request bytes into request line parts, the
// headers in order and the body.
func parseRaw(raw []byte) (method, uri, proto string, hdr [][2]string, body []byte) {
	end, lines := headerEnd(raw)
	if end < 0 {
		return "", "", "", nil, nil
	}
	if f := strings.SplitN(string(lines[0]), " ", 3); len(f) == 3 {
		method, uri, proto = f[0], f[1], f[2]
	}
	hdr = make([][2]string, 0, len(lines)-1)
	for _, l := range lines[1:] {
		if name, value, ok := splitHeader(l); ok {
			hdr = append(hdr, [2]string{name, value})
		}
	}
	return method, uri, proto, hdr, raw[end:]
}

func connFrom(ctx context.Context) *recConn {
	c, _ := ctx.Value(connKey{}).(*recConn)
	return c
}

// recListener wraps accepted connections in recConn (and TLS when cfg is set).
type recListener struct {
	net.Listener
	cfg *tls.Config
}

func (l *recListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if l.cfg == nil {
		return &recConn{Conn: c}, nil
	}
	tc := tls.Server(c, l.cfg)
	return &recConn{Conn: tc, tls: tc}, nil
}

// capLog keeps the latest max items in arrival order. Each item is
// numbered by its arrival (0, 1, ...) and indexed by a key (the lowercased
// registration id), so that one registration's items or the items since a
// point can be read without copying all of them.
type capLog[T any] struct {
	mu  sync.Mutex
	max int
	// fix, when set, completes an item in place before it is first handed
	// out (Request.complete), so that the work is done once per item.
	fix   func(*T)
	items []T      // ring buffer of the kept items
	keys  []string // keys[i] is the key of items[i]
	start int      // index in items of the oldest kept item
	total int      // items ever added: the next item's number
	byKey map[string][]int
}

// add appends v under key ("" = not indexed), dropping the oldest item when
// max are kept. With max <= 0 nothing is kept or counted.
func (l *capLog[T]) add(v T, key string) {
	if l.max <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.total
	l.total++
	if len(l.items) < l.max {
		l.items = append(l.items, v)
		l.keys = append(l.keys, key)
	} else {
		l.unindex(l.keys[l.start], n-l.max)
		l.items[l.start], l.keys[l.start] = v, key
		l.start = (l.start + 1) % l.max
	}
	if key != "" {
		if l.byKey == nil {
			l.byKey = map[string][]int{}
		}
		l.byKey[key] = append(l.byKey[key], n)
	}
}

// unindex removes item number n, the oldest, from the index of key.
func (l *capLog[T]) unindex(key string, n int) {
	if key == "" {
		return
	}
	ns := l.byKey[key]
	if len(ns) > 0 && ns[0] == n {
		ns = ns[1:]
	}
	if len(ns) == 0 {
		delete(l.byKey, key)
		return
	}
	l.byKey[key] = ns
}

// at returns item number n, which must be kept; l.mu is held.
func (l *capLog[T]) at(n int) T {
	oldest := l.total - len(l.items)
	p := &l.items[(l.start+n-oldest)%len(l.items)]
	if l.fix != nil {
		l.fix(p)
	}
	return *p
}

// count is the number of items ever added (kept or dropped since).
func (l *capLog[T]) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// since returns the kept items numbered n or later, oldest first.
func (l *capLog[T]) since(n int) []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	n = max(n, l.total-len(l.items))
	if n >= l.total {
		return nil
	}
	out := make([]T, 0, l.total-n)
	for ; n < l.total; n++ {
		out = append(out, l.at(n))
	}
	return out
}

// all returns the kept items, oldest first.
func (l *capLog[T]) all() []T {
	out := l.since(0)
	if out == nil {
		out = []T{}
	}
	return out
}

// keyed returns the kept items added under key and numbered n or later,
// oldest first.
func (l *capLog[T]) keyed(key string, n int) []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	ns := l.byKey[key]
	i, _ := slices.BinarySearch(ns, n)
	if i == len(ns) {
		return nil
	}
	out := make([]T, 0, len(ns)-i)
	for _, m := range ns[i:] {
		out = append(out, l.at(m))
	}
	return out
}

// regKey is the index key of a registration id: the mock's registry and
// enrollments match registration ids case-insensitively by their
// lowercase form (registry.get).
func regKey(registrationID string) string {
	return strings.ToLower(registrationID)
}

// redactToken shortens the sig value of a SAS token to its first 6
// characters so that printed captures cannot be replayed.
func redactToken(tok string) string {
	i := strings.Index(tok, "sig=")
	for i > 0 && tok[i-1] != '&' && tok[i-1] != ' ' {
		j := strings.Index(tok[i+4:], "sig=")
		if j < 0 {
			return tok
		}
		i += 4 + j
	}
	if i < 0 {
		return tok
	}
	start := i + 4
	end := strings.IndexByte(tok[start:], '&')
	if end < 0 {
		end = len(tok)
	} else {
		end += start
	}
	return tok[:start] + redactSecret(tok[start:end]) + tok[end:]
}

// redactSecret keeps the first 6 characters of a signature or key.
func redactSecret(s string) string {
	if len(s) <= 6 {
		return strings.Repeat("*", len(s))
	}
	return s[:6] + "…(redacted)"
}

// redactRaw redacts the signature in the Authorization header of raw
// request bytes.
func redactRaw(raw []byte) []byte {
	end, _ := headerEnd(raw)
	if end < 0 {
		end = len(raw)
	}
	var out bytes.Buffer
	off := 0
	for off < end {
		j := bytes.IndexByte(raw[off:end], '\n')
		next := end
		if j >= 0 {
			next = off + j + 1
		}
		line := raw[off:next]
		if len(line) > 14 && strings.EqualFold(string(line[:14]), "authorization:") {
			out.WriteString(redactToken(string(line)))
		} else {
			out.Write(line)
		}
		off = next
	}
	out.Write(raw[end:])
	return out.Bytes()
}

// complete fills the fields parsed from Raw.
func (r *Request) complete() {
	if r.parsed {
		return
	}
	r.parsed = true
	r.Method, r.RequestURI, r.Proto, r.Header, _ = parseRaw(r.Raw)
}

// capturedJSON is the redacted JSON form of a Request (capture file, admin
// endpoint).
type capturedJSON struct {
	Time           time.Time   `json:"time"`
	RemoteAddr     string      `json:"remoteAddr"`
	Method         string      `json:"method"`
	RequestURI     string      `json:"requestUri"`
	Proto          string      `json:"proto"`
	Header         [][2]string `json:"header"`
	Body           string      `json:"body"`
	Raw            string      `json:"raw"`
	TLSVersion     string      `json:"tlsVersion,omitempty"`
	SNI            string      `json:"sni,omitempty"`
	RegistrationID string      `json:"registrationId,omitempty"`
	Status         int         `json:"status"`
	RetryAfter     *int        `json:"retryAfter,omitempty"` // absent without a Retry-After
	OperationID    string      `json:"operationId,omitempty"`
	Diagnosis      *Diagnosis  `json:"diagnosis,omitempty"`
}

// Redacted returns a copy of r with signatures shortened in the header,
// the raw bytes and the diagnosis (which is redacted already).
func (r Request) Redacted() Request {
	r.complete()
	out := r
	out.Header = make([][2]string, len(r.Header))
	for i, h := range r.Header {
		if strings.EqualFold(h[0], "Authorization") {
			h[1] = redactToken(h[1])
		}
		out.Header[i] = h
	}
	out.Raw = redactRaw(r.Raw)
	return out
}

// MarshalJSON encodes the request redacted, with body and raw bytes as text.
func (r Request) MarshalJSON() ([]byte, error) {
	rr := r.Redacted()
	var ra *int
	if rr.HasRetryAfter {
		ra = &rr.RetryAfter
	}
	return json.Marshal(capturedJSON{
		Time: rr.Time, RemoteAddr: rr.RemoteAddr, Method: rr.Method, RequestURI: rr.RequestURI,
		Proto: rr.Proto, Header: rr.Header, Body: string(rr.Body), Raw: string(rr.Raw),
		TLSVersion: rr.TLSVersion, SNI: rr.SNI, RegistrationID: rr.RegistrationID,
		Status: rr.Status, RetryAfter: ra, OperationID: rr.OperationID, Diagnosis: rr.Diagnosis,
	})
}
