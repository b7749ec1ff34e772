package protocol

import "fmt"

// Code is a protocol error code, carried in an ERR frame's code argument.
type Code string

// The fixed table of error codes (PROTOCOL.md §3).
const (
	CodeBadFrame    Code = "BAD_FRAME"
	CodeBadCRC      Code = "BAD_CRC"
	CodeUnknownVerb Code = "UNKNOWN_VERB"
	CodeBadArg      Code = "BAD_ARG"
	CodeTooLong     Code = "TOO_LONG"
	CodeBusy        Code = "BUSY"
	CodeNetwork     Code = "NETWORK"
	CodeTLS         Code = "TLS"
	CodeHTTP        Code = "HTTP"
	CodeTimeout     Code = "TIMEOUT"
	CodeInternal    Code = "INTERNAL"
)

var codeInfo = map[Code]struct {
	msg       string
	retriable bool
}{
	CodeBadFrame:    {"the frame could not be parsed", true},
	CodeBadCRC:      {"the frame's CRC did not match", true},
	CodeUnknownVerb: {"the board does not implement this verb", false},
	CodeBadArg:      {"an argument is missing, unknown or invalid", false},
	CodeTooLong:     {"the frame exceeded the maximum length", false},
	CodeBusy:        {"the board is busy with another request", true},
	CodeNetwork:     {"the board could not reach the network", true},
	CodeTLS:         {"the TLS handshake failed", false},
	CodeHTTP:        {"the server answered with an unexpected HTTP status", false},
	CodeTimeout:     {"an operation on the board timed out", true},
	CodeInternal:    {"internal error on the board", false},
}

// Codes returns every error code in the order of the specification.
func Codes() []Code {
	return []Code{CodeBadFrame, CodeBadCRC, CodeUnknownVerb, CodeBadArg, CodeTooLong,
		CodeBusy, CodeNetwork, CodeTLS, CodeHTTP, CodeTimeout, CodeInternal}
}

// Known reports whether c is in the fixed table.
func (c Code) Known() bool { _, ok := codeInfo[c]; return ok }

// Message returns the human description of c.
func (c Code) Message() string {
	if i, ok := codeInfo[c]; ok {
		return i.msg
	}
	return "unknown error code"
}

// Retriable reports whether a request that failed with c may be resent.
func (c Code) Retriable() bool { return codeInfo[c].retriable }

// RemoteError is an ERR frame received from a board.
type RemoteError struct {
	Verb    string
	Code    Code
	Message string
	Frame   *Frame
}

func (e *RemoteError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s: %s (%s)", e.Verb, e.Code, e.Code.Message())
	}
	return fmt.Sprintf("%s: %s: %s", e.Verb, e.Code, e.Message)
}

// FrameError is a line that carries the marker but is not a valid frame.
type FrameError struct {
	Code   Code   // CodeBadFrame, CodeBadCRC or CodeTooLong
	Reason string // what is wrong
	Seq    int    // the sequence number if it could be read, else -1
	Line   []byte // the offending line (truncated to a few hundred bytes)
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("%s: %s", e.Code, e.Reason)
}

// Is lets errors.Is(err, ErrBadCRC) and friends match by code.
func (e *FrameError) Is(target error) bool {
	t, ok := target.(*FrameError)
	return ok && t.Reason == "" && t.Code == e.Code
}

// Sentinels for errors.Is.
var (
	ErrBadFrame error = &FrameError{Code: CodeBadFrame, Seq: -1}
	ErrBadCRC   error = &FrameError{Code: CodeBadCRC, Seq: -1}
	ErrTooLong  error = &FrameError{Code: CodeTooLong, Seq: -1}
)
