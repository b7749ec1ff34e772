package harness

import (
	"context"
	"fmt"
	"strings"

	"github.com/hiltest/hiltest/protocol"
)

// minBlobValue is the encoded size below which an argument is not worth
// moving to a blob.
const minBlobValue = 64

// putBlobs moves argument values that make the request longer than the
// frame maximum into blobs (BLOB.PUT) and replaces them with K.blob=NAME,
// largest first, until the request fits (PROTOCOL.md §1.2). A request that
// cannot be made to fit fails with an error wrapping protocol.ErrTooLong,
// before anything is sent.
func (s *Session) putBlobs(ctx context.Context, w *waiter, verb string, args []protocol.Arg) ([]protocol.Arg, error) {
	s.mu.Lock()
	max, info := s.txMax, s.info
	s.mu.Unlock()
	size := func(a []protocol.Arg) int { return protocol.EncodedFrameLen(protocol.NewRequest(65535, verb, a...)) }
	if size(args) <= max {
		return args, nil
	}
	if !info.HasCap(protocol.CapBlob) {
		return nil, tooLong("request is %d bytes, the board takes at most %d and has no %q capability to carry long values",
			size(args), max, protocol.CapBlob)
	}
	args = append([]protocol.Arg(nil), args...)
	used := map[string]bool{}
	for size(args) > max {
		big := -1
		for i, a := range args {
			if strings.HasSuffix(a.Key, ".blob") || protocol.EncodedLen(a.Value) < minBlobValue {
				continue
			}
			if big < 0 || protocol.EncodedLen(a.Value) > protocol.EncodedLen(args[big].Value) {
				big = i
			}
		}
		if big < 0 {
			return nil, tooLong("request is %d bytes, the board takes at most %d, and no argument is large enough to move to a blob",
				size(args), max)
		}
		a := args[big]
		if info.BlobMax > 0 && len(a.Value) > info.BlobMax {
			return nil, tooLong("argument %s is %d bytes, the board's blobs hold at most %d", a.Key, len(a.Value), info.BlobMax)
		}
		name := blobName(a.Key, used)
		if err := s.blobPut(ctx, w, name, a.Value); err != nil {
			return nil, fmt.Errorf("argument %s: %w", a.Key, err)
		}
		args[big] = protocol.String(a.Key+".blob", name)
	}
	return args, nil
}

// tooLongError is a request the session refuses to send because it cannot
// fit the board's frame maximum; it wraps protocol.ErrTooLong.
type tooLongError struct{ msg string }

func (e *tooLongError) Error() string { return e.msg + " (frame too long)" }
func (e *tooLongError) Unwrap() error { return protocol.ErrTooLong }

func tooLong(format string, args ...any) error {
	return &tooLongError{msg: fmt.Sprintf(format, args...)}
}

// blobName derives a blob name ([a-z0-9_], 1-16 characters) from a key.
func blobName(key string, used map[string]bool) string {
	var b strings.Builder
	for _, c := range key {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	base := b.String()
	if len(base) > 12 {
		base = base[:12]
	}
	if base == "" {
		base = "arg"
	}
	name := base
	for i := 2; used[name]; i++ {
		name = fmt.Sprintf("%s%d", base, i)
	}
	used[name] = true
	return name
}

// blobPut writes data to blob name in chunks that fit the frame maximum.
func (s *Session) blobPut(ctx context.Context, w *waiter, name string, data []byte) error {
	s.mu.Lock()
	max := s.txMax
	s.mu.Unlock()
	total := len(data)
	off := 0
	for first := true; first || off < total; first = false {
		args := []protocol.Arg{protocol.String("name", name), protocol.Int("off", int64(off)), protocol.Bytes("data", nil)}
		if off == 0 {
			args = append(args, protocol.Int("total", int64(total)))
		}
		avail := max - protocol.EncodedFrameLen(protocol.NewRequest(65535, protocol.VerbBlobPut, args...))
		if avail < 3 {
			return fmt.Errorf("BLOB.PUT: frame maximum %d leaves no room for data", max)
		}
		n, cost := 0, 0
		for off+n < total {
			c := protocol.EncodedLen(data[off+n : off+n+1])
			if cost+c > avail {
				break
			}
			cost += c
			n++
		}
		args[2] = protocol.Bytes("data", data[off:off+n])
		f, err := s.request(ctx, w, protocol.VerbBlobPut, args)
		if err != nil {
			return err
		}
		held, err := f.Int("len")
		if err != nil {
			return fmt.Errorf("BLOB.PUT: %w", err)
		}
		if int(held) != off+n {
			return fmt.Errorf("BLOB.PUT %s: board holds %d bytes after writing %d at offset %d", name, held, n, off)
		}
		off += n
	}
	return nil
}

// getBlobs replaces results given as K.blob=N K.len=L with K, fetched with
// BLOB.GET, keeping the order of the results.
func (s *Session) getBlobs(ctx context.Context, w *waiter, f *protocol.Frame) (*protocol.Frame, error) {
	has := false
	for _, a := range f.Args {
		if strings.HasSuffix(a.Key, ".blob") {
			has = true
		}
	}
	if !has {
		return f, nil
	}
	out := &protocol.Frame{Kind: f.Kind, Seq: f.Seq, Verb: f.Verb}
	for _, a := range f.Args {
		base, ok := strings.CutSuffix(a.Key, ".blob")
		switch {
		case ok:
			want := -1
			if f.Has(base + ".len") {
				n, err := f.Int(base + ".len")
				if err != nil {
					return nil, fmt.Errorf("%s: %w", f.Verb, err)
				}
				want = int(n)
			}
			data, err := s.blobGet(ctx, w, string(a.Value), want)
			if err != nil {
				return nil, fmt.Errorf("%s: result %s: %w", f.Verb, base, err)
			}
			out.Args = append(out.Args, protocol.Bytes(base, data))
		case strings.HasSuffix(a.Key, ".len") && f.Has(strings.TrimSuffix(a.Key, ".len")+".blob"):
			// folded into the value
		default:
			out.Args = append(out.Args, a)
		}
	}
	return out, nil
}

// blobGet reads blob name whole; want is its announced length (-1 unknown).
func (s *Session) blobGet(ctx context.Context, w *waiter, name string, want int) ([]byte, error) {
	var data []byte
	for {
		f, err := s.request(ctx, w, protocol.VerbBlobGet,
			[]protocol.Arg{protocol.String("name", name), protocol.Int("off", int64(len(data)))})
		if err != nil {
			return nil, err
		}
		total, err := f.Int("total")
		if err != nil {
			return nil, fmt.Errorf("BLOB.GET: %w", err)
		}
		chunk, _ := f.Get("data")
		data = append(data, chunk...)
		if len(data) >= int(total) {
			if want >= 0 && int(total) != want {
				return nil, fmt.Errorf("BLOB.GET %s: blob holds %d bytes, the result announced %d", name, total, want)
			}
			return data[:total], nil
		}
		if len(chunk) == 0 {
			return nil, fmt.Errorf("BLOB.GET %s: no data at offset %d of %d", name, len(data), total)
		}
	}
}
