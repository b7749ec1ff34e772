package reference

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// canonicalHeaders are the headers that matter when comparing DPS requests,
// in the order the canonical form writes them.
var canonicalHeaders = [...]string{"Host", "Content-Type", "Content-Length", "Authorization"}

// CanonicalRequest is the part of an HTTP request that matters for DPS, in a
// fixed form, so that two requests written by different HTTP stacks (header
// order, User-Agent, Accept-Encoding...) compare equal when DPS would see the
// same thing.
type CanonicalRequest struct {
	Method  string
	Path    string
	Query   string      // without '?'
	Headers [][2]string // Host, Content-Type, Content-Length, Authorization (those present), exact values, in that order
	Body    []byte
}

// Header returns the value of a canonical header and whether it is present.
func (c CanonicalRequest) Header(name string) (string, bool) {
	name = textproto.CanonicalMIMEHeaderKey(name)
	for _, h := range c.Headers {
		if h[0] == name {
			return h[1], true
		}
	}
	return "", false
}

// Bytes is the canonical text form: the wire form with only the headers that
// matter, in fixed order, CRLF line ends.
func (c CanonicalRequest) Bytes() []byte {
	var b bytes.Buffer
	b.WriteString(c.Method + " " + c.Path)
	if c.Query != "" {
		b.WriteString("?" + c.Query)
	}
	b.WriteString(" HTTP/1.1\r\n")
	for _, h := range c.Headers {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(c.Body)
	return b.Bytes()
}

// ParseRequest reads an HTTP/1.x request from its wire bytes (request line,
// headers, blank line, body) into its canonical form. Lines may end in CRLF or
// LF. Header names are matched case-insensitively; values are kept exactly,
// without the optional whitespace around them. The body is what follows the
// blank line, cut to Content-Length when that is shorter.
func ParseRequest(raw []byte) (CanonicalRequest, error) {
	var c CanonicalRequest
	head, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		if head, body, ok = bytes.Cut(raw, []byte("\n\n")); !ok {
			return c, errors.New("parse request: no blank line after the headers")
		}
	}
	lines := strings.Split(strings.ReplaceAll(string(head), "\r\n", "\n"), "\n")
	parts := strings.Split(lines[0], " ")
	if len(parts) != 3 || parts[0] == "" || !strings.HasPrefix(parts[2], "HTTP/") {
		return c, fmt.Errorf("parse request: bad request line %q", lines[0])
	}
	c.Method = parts[0]
	c.Path, c.Query, _ = strings.Cut(parts[1], "?")
	got := map[string][]string{}
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return c, fmt.Errorf("parse request: bad header line %q", l)
		}
		k := textproto.CanonicalMIMEHeaderKey(name)
		got[k] = append(got[k], strings.Trim(value, " \t"))
	}
	for _, k := range canonicalHeaders {
		for _, v := range got[k] {
			c.Headers = append(c.Headers, [2]string{k, v})
		}
	}
	c.Body = body
	if cl, ok := c.Header("Content-Length"); ok {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 {
			return c, fmt.Errorf("parse request: bad Content-Length %q", cl)
		}
		if n < len(body) {
			c.Body = body[:n]
		}
	}
	return c, nil
}

// CanonicalFromHTTP builds the canonical form of a received *http.Request
// (server side: r.Host holds the Host header, r.RequestURI the target) or of
// one about to be sent. It reads and restores r.Body. Content-Length is taken
// from r.ContentLength when the header map does not hold it (net/http moves it
// there).
func CanonicalFromHTTP(r *http.Request) (CanonicalRequest, error) {
	c := CanonicalRequest{Method: r.Method}
	target := r.RequestURI
	if target == "" && r.URL != nil {
		target = r.URL.RequestURI()
	}
	c.Path, c.Query, _ = strings.Cut(target, "?")
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return c, fmt.Errorf("read request body: %w", err)
		}
		_ = r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(b))
		c.Body = b
	}
	host := r.Host
	if host == "" && r.URL != nil {
		host = r.URL.Host
	}
	for _, k := range canonicalHeaders {
		vals := r.Header.Values(k)
		switch k {
		case "Host":
			vals = []string{host}
		case "Content-Length":
			if len(vals) == 0 && r.ContentLength > 0 {
				vals = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
		}
		for _, v := range vals {
			c.Headers = append(c.Headers, [2]string{k, v})
		}
	}
	return c, nil
}

// CompareRequests parses two requests from their wire bytes and compares
// their canonical forms; nil means DPS would see the same request.
func CompareRequests(expected, got []byte) (*Divergence, error) {
	e, err := ParseRequest(expected)
	if err != nil {
		return nil, fmt.Errorf("expected request: %w", err)
	}
	g, err := ParseRequest(got)
	if err != nil {
		return nil, fmt.Errorf("received request: %w", err)
	}
	return FirstDivergence(e.Bytes(), g.Bytes()), nil
}
