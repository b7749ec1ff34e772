// Package protocol implements the hiltest host⇄board wire protocol: line-based
// ASCII frames with a marker, sequence numbers, named percent-encoded
// arguments and a CRC-32, as specified in PROTOCOL.md beside this file.
//
// The package does no I/O beyond io.Reader and io.Writer: an Encoder writes
// frames, a Reader splits a console stream into frames and device log lines.
package protocol

import (
	"bytes"
	"fmt"
	"strconv"
)

// Version is the protocol version this package speaks.
const Version = 1

// Marker starts every frame.
const Marker = "@@HIL"

// DefaultMaxFrame is the default maximum frame length in bytes, marker to LF inclusive.
const DefaultMaxFrame = 4096

// MinMaxFrame is the smallest maximum frame length a peer may announce.
const MinMaxFrame = 256

// Kind is the kind of a frame.
type Kind string

// Frame kinds.
const (
	KindRequest Kind = "REQ" // host → board
	KindOK      Kind = "OK"  // board → host, success
	KindError   Kind = "ERR" // board → host, failure
	KindEvent   Kind = "EVT" // board → host, unsolicited
)

func (k Kind) valid() bool {
	switch k {
	case KindRequest, KindOK, KindError, KindEvent:
		return true
	}
	return false
}

// IsResponse reports whether k is OK or ERR.
func (k Kind) IsResponse() bool { return k == KindOK || k == KindError }

// Verbs of protocol version 1.
const (
	VerbHello       = "HELLO"
	VerbPing        = "PING"
	VerbReset       = "RESET"
	VerbTimeSet     = "TIME.SET"
	VerbTimeGet     = "TIME.GET"
	VerbDerive      = "DERIVE"
	VerbSAS         = "SAS"
	VerbDPSConfig   = "DPS.CONFIG"
	VerbDPSRequest  = "DPS.REQUEST"
	VerbDPSRegister = "DPS.REGISTER"
	VerbTLSCA       = "TLS.CA"
	VerbNetWiFi     = "NET.WIFI"
	VerbBlobPut     = "BLOB.PUT"
	VerbBlobGet     = "BLOB.GET"

	// Events.
	EventReady    = "READY"
	EventLog      = "LOG"
	EventProgress = "PROGRESS"

	// VerbFrame names the verb of an ERR answer to a frame whose verb could not be read.
	VerbFrame = "FRAME"
)

// Capabilities a board may list in HELLO's caps.
const (
	CapPing        = "ping"
	CapReset       = "reset"
	CapTime        = "time"
	CapDerive      = "derive"
	CapSAS         = "sas"
	CapDPSConfig   = "dps.config"
	CapDPSRequest  = "dps.request"
	CapDPSRegister = "dps.register"
	CapTLSCA       = "tls.ca"
	CapNetWiFi     = "net.wifi"
	CapBlob        = "blob"
)

// CapabilityFor returns the capability a board must list in HELLO for verb
// (PROTOCOL.md §4), or "" for HELLO, which every board answers, and for verbs
// this version does not define.
func CapabilityFor(verb string) string {
	switch verb {
	case VerbPing:
		return CapPing
	case VerbReset:
		return CapReset
	case VerbTimeSet, VerbTimeGet:
		return CapTime
	case VerbDerive:
		return CapDerive
	case VerbSAS:
		return CapSAS
	case VerbDPSConfig:
		return CapDPSConfig
	case VerbDPSRequest:
		return CapDPSRequest
	case VerbDPSRegister:
		return CapDPSRegister
	case VerbTLSCA:
		return CapTLSCA
	case VerbNetWiFi:
		return CapNetWiFi
	case VerbBlobPut, VerbBlobGet:
		return CapBlob
	}
	return ""
}

// Arg is one named argument or result.
type Arg struct {
	Key   string
	Value []byte
}

// String returns an argument with a text value.
func String(key, value string) Arg { return Arg{Key: key, Value: []byte(value)} }

// Bytes returns an argument with a byte value.
func Bytes(key string, value []byte) Arg { return Arg{Key: key, Value: value} }

// Int returns an argument with a decimal value.
func Int(key string, value int64) Arg {
	return Arg{Key: key, Value: strconv.AppendInt(nil, value, 10)}
}

// Frame is one protocol frame.
type Frame struct {
	Kind Kind
	Seq  uint16
	Verb string
	Args []Arg
}

// NewRequest returns a request frame.
func NewRequest(seq uint16, verb string, args ...Arg) *Frame {
	return &Frame{Kind: KindRequest, Seq: seq, Verb: verb, Args: args}
}

// NewOK returns a success response to the request with seq and verb.
func NewOK(seq uint16, verb string, args ...Arg) *Frame {
	return &Frame{Kind: KindOK, Seq: seq, Verb: verb, Args: args}
}

// NewError returns an error response with code and a human message.
func NewError(seq uint16, verb string, code Code, msg string, args ...Arg) *Frame {
	all := append([]Arg{String("code", string(code)), String("msg", msg)}, args...)
	return &Frame{Kind: KindError, Seq: seq, Verb: verb, Args: all}
}

// NewEvent returns an event frame.
func NewEvent(seq uint16, name string, args ...Arg) *Frame {
	return &Frame{Kind: KindEvent, Seq: seq, Verb: name, Args: args}
}

// Get returns the value of key and whether it is present.
func (f *Frame) Get(key string) ([]byte, bool) {
	for _, a := range f.Args {
		if a.Key == key {
			return a.Value, true
		}
	}
	return nil, false
}

// Has reports whether key is present.
func (f *Frame) Has(key string) bool {
	_, ok := f.Get(key)
	return ok
}

// String returns the value of key as text ("" when absent).
func (f *Frame) String(key string) string {
	v, _ := f.Get(key)
	return string(v)
}

// Int returns the value of key as a decimal integer.
func (f *Frame) Int(key string) (int64, error) {
	v, ok := f.Get(key)
	if !ok {
		return 0, fmt.Errorf("%s %s: missing %q", f.Kind, f.Verb, key)
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %s=%q is not a decimal integer", f.Kind, f.Verb, key, v)
	}
	return n, nil
}

// Set replaces the value of key, or appends it.
func (f *Frame) Set(key string, value []byte) {
	for i := range f.Args {
		if f.Args[i].Key == key {
			f.Args[i].Value = value
			return
		}
	}
	f.Args = append(f.Args, Arg{Key: key, Value: value})
}

// Err returns a *RemoteError for an ERR frame and nil otherwise.
func (f *Frame) Err() error {
	if f.Kind != KindError {
		return nil
	}
	return &RemoteError{Verb: f.Verb, Code: Code(f.String("code")), Message: f.String("msg"), Frame: f}
}

// Clone returns a deep copy of f.
func (f *Frame) Clone() *Frame {
	c := *f
	c.Args = make([]Arg, len(f.Args))
	for i, a := range f.Args {
		c.Args[i] = Arg{Key: a.Key, Value: bytes.Clone(a.Value)}
	}
	return &c
}

// secretKeys are argument keys whose values are secrets.
var secretKeys = map[string]bool{
	"group_key": true, "key": true, "device_key": true, "sig": true,
	"token": true, "password": true, "request": true,
}

// IsSecret reports whether values of key are secrets that logs and reports redact.
func IsSecret(key string) bool { return secretKeys[key] }

// Redacted returns the frame's text form with secret values replaced by
// "[redacted]". It is meant for logs; it has no CRC.
func (f *Frame) Redacted() string {
	b := appendHeader(nil, f)
	for _, a := range f.Args {
		b = append(b, ' ')
		b = append(b, a.Key...)
		b = append(b, '=')
		if IsSecret(a.Key) && len(a.Value) > 0 {
			b = append(b, "[redacted]"...)
			continue
		}
		b = AppendValue(b, a.Value)
	}
	return string(b)
}
