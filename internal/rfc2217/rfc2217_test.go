package rfc2217

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"go.bug.st/serial"
	"go.uber.org/goleak"
	"pgregory.net/rapid"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// clientHello is what Dial sends first: WILL COM-PORT, WILL/DO BINARY, WILL/DO SGA.
var clientHello = []byte{
	0xFF, 0xFB, 44,
	0xFF, 0xFB, 0, 0xFF, 0xFD, 0,
	0xFF, 0xFB, 3, 0xFF, 0xFD, 3,
}

// greetingReplies is the client's answer to ser2netGreeting: refuse the
// server's ECHO and TERMINAL-TYPE; everything else was already agreed.
var greetingReplies = []byte{0xFF, 0xFE, 1, 0xFF, 0xFC, 24}

func dialFake(t *testing.T, s *fakeServer, opts Options) *Port {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := Dial(ctx, s.addr(), opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestDialNegotiationBytes(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		mode []byte // SetMode subnegotiations expected after the hello
	}{
		{"no mode", Options{}, nil},
		{"115200 8N1", Options{BaudRate: 115200}, []byte{
			0xFF, 0xFA, 44, 1, 0x00, 0x01, 0xC2, 0x00, 0xFF, 0xF0,
			0xFF, 0xFA, 44, 2, 8, 0xFF, 0xF0,
			0xFF, 0xFA, 44, 3, 1, 0xFF, 0xF0,
			0xFF, 0xFA, 44, 4, 1, 0xFF, 0xF0,
		}},
		{"65535 7E2 escapes 0xFF in the baud rate", Options{BaudRate: 65535, DataBits: 7, Parity: serial.EvenParity, StopBits: serial.TwoStopBits}, []byte{
			0xFF, 0xFA, 44, 1, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xF0,
			0xFF, 0xFA, 44, 2, 7, 0xFF, 0xF0,
			0xFF, 0xFA, 44, 3, 3, 0xFF, 0xF0,
			0xFF, 0xFA, 44, 4, 2, 0xFF, 0xF0,
		}},
		{"9600 5O1.5", Options{BaudRate: 9600, DataBits: 5, Parity: serial.OddParity, StopBits: serial.OnePointFiveStopBits}, []byte{
			0xFF, 0xFA, 44, 1, 0x00, 0x00, 0x25, 0x80, 0xFF, 0xF0,
			0xFF, 0xFA, 44, 2, 5, 0xFF, 0xF0,
			0xFF, 0xFA, 44, 3, 2, 0xFF, 0xF0,
			0xFF, 0xFA, 44, 4, 3, 0xFF, 0xF0,
		}},
		{"mark and space parity", Options{BaudRate: 1200, Parity: serial.SpaceParity}, []byte{
			0xFF, 0xFA, 44, 1, 0x00, 0x00, 0x04, 0xB0, 0xFF, 0xF0,
			0xFF, 0xFA, 44, 2, 8, 0xFF, 0xF0,
			0xFF, 0xFA, 44, 3, 5, 0xFF, 0xF0,
			0xFF, 0xFA, 44, 4, 1, 0xFF, 0xF0,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t, fakeConfig{})
			p := dialFake(t, s, tt.opts)
			want := append(append(append([]byte{}, clientHello...), greetingReplies...), tt.mode...)
			got := s.waitRaw(t, len(want))
			if !bytes.Equal(got, want) {
				t.Fatalf("client sent\n % x\nwant\n % x", got, want)
			}
			if err := p.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		})
	}
}

func TestControlRequestBytes(t *testing.T) {
	tests := []struct {
		name string
		op   func(p *Port) error
		want []byte
	}{
		{"DTR on", func(p *Port) error { return p.SetDTR(true) }, []byte{0xFF, 0xFA, 44, 5, 8, 0xFF, 0xF0}},
		{"DTR off", func(p *Port) error { return p.SetDTR(false) }, []byte{0xFF, 0xFA, 44, 5, 9, 0xFF, 0xF0}},
		{"RTS on", func(p *Port) error { return p.SetRTS(true) }, []byte{0xFF, 0xFA, 44, 5, 11, 0xFF, 0xF0}},
		{"RTS off", func(p *Port) error { return p.SetRTS(false) }, []byte{0xFF, 0xFA, 44, 5, 12, 0xFF, 0xF0}},
		{"purge input", func(p *Port) error { return p.ResetInputBuffer() }, []byte{0xFF, 0xFA, 44, 12, 1, 0xFF, 0xF0}},
		{"purge output", func(p *Port) error { return p.ResetOutputBuffer() }, []byte{0xFF, 0xFA, 44, 12, 2, 0xFF, 0xF0}},
		{"break", func(p *Port) error { return p.Break(time.Millisecond) }, []byte{0xFF, 0xFA, 44, 5, 5, 0xFF, 0xF0, 0xFF, 0xFA, 44, 5, 6, 0xFF, 0xF0}},
		{"drain sends nothing", func(p *Port) error { return p.Drain() }, nil},
		{"data with IAC", func(p *Port) error { _, err := p.Write([]byte{'a', 0xFF, 'b', 0xFF, 0xFF}); return err },
			[]byte{'a', 0xFF, 0xFF, 'b', 0xFF, 0xFF, 0xFF, 0xFF}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t, fakeConfig{})
			p := dialFake(t, s, Options{})
			before := len(s.waitRaw(t, len(clientHello)+len(greetingReplies)))
			if err := tt.op(p); err != nil {
				t.Fatalf("op: %v", err)
			}
			// A marker write shows where the operation's bytes end.
			if _, err := p.Write([]byte("|")); err != nil {
				t.Fatalf("Write marker: %v", err)
			}
			want := append(append([]byte{}, tt.want...), '|')
			got := s.waitRaw(t, before+len(want))[before:]
			if !bytes.Equal(got, want) {
				t.Fatalf("client sent % x, want % x", got, want)
			}
		})
	}
}

func TestSetControlAnswers(t *testing.T) {
	tests := []struct {
		name    string
		cfg     fakeConfig
		opts    Options
		addr    func(s *fakeServer) string
		wantErr error
		anyErr  bool
	}{
		{name: "answered", cfg: fakeConfig{}},
		{name: "no answer", cfg: fakeConfig{noControlAnswer: true}, wantErr: ErrNoAnswer},
		{name: "no answer, ignored by option", cfg: fakeConfig{noControlAnswer: true}, opts: Options{IgnoreSetControlAnswer: true}},
		{name: "no answer, ignored by URL", cfg: fakeConfig{noControlAnswer: true},
			addr: func(s *fakeServer) string { return "rfc2217://" + s.addr() + "?ign_set_control" }},
		{name: "server reports the other state", cfg: fakeConfig{flipControl: true}, anyErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t, tt.cfg)
			tt.opts.ControlTimeout = 200 * time.Millisecond
			addr := s.addr()
			if tt.addr != nil {
				addr = tt.addr(s)
			}
			p, err := Dial(context.Background(), addr, tt.opts)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer p.Close()
			for _, op := range []func(bool) error{p.SetDTR, p.SetRTS} {
				for _, v := range []bool{true, false} {
					err := op(v)
					switch {
					case tt.wantErr != nil:
						if !errors.Is(err, tt.wantErr) {
							t.Fatalf("err = %v, want %v", err, tt.wantErr)
						}
					case tt.anyErr:
						if err == nil {
							t.Fatal("err = nil, want an error")
						}
					case err != nil:
						t.Fatalf("err = %v", err)
					}
				}
			}
		})
	}
}

// TestControlWhileReading runs SetDTR/SetRTS/SetMode while another goroutine
// keeps reading (the harness's reader loop): the reader's parser must hand
// the answers to the waiting request, and data must still reach the reader.
func TestControlWhileReading(t *testing.T) {
	for _, timeout := range []time.Duration{20 * time.Millisecond, serial.NoTimeout} {
		t.Run(timeout.String(), func(t *testing.T) {
			s := newFakeServer(t, fakeConfig{})
			p := dialFake(t, s, Options{ControlTimeout: 2 * time.Second})
			if err := p.SetReadTimeout(timeout); err != nil {
				t.Fatal(err)
			}
			got := make(chan []byte, 1)
			go func() {
				var all []byte
				buf := make([]byte, 64)
				for {
					n, err := p.Read(buf)
					all = append(all, buf[:n]...)
					if err != nil {
						got <- all
						return
					}
				}
			}()
			for i := range 10 {
				if err := p.SetDTR(i%2 == 0); err != nil {
					t.Fatalf("SetDTR: %v", err)
				}
				if err := p.SetRTS(i%2 == 1); err != nil {
					t.Fatalf("SetRTS: %v", err)
				}
				s.send([]byte{byte('0' + i)})
			}
			if err := p.SetMode(&serial.Mode{BaudRate: 460800}); err != nil {
				t.Fatalf("SetMode: %v", err)
			}
			s.send([]byte("end"))
			s.hangUp()
			select {
			case data := <-got:
				if string(data) != "0123456789end" {
					t.Fatalf("reader got %q", data)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("reader did not finish")
			}
		})
	}
}

func TestSetModeInvalid(t *testing.T) {
	s := newFakeServer(t, fakeConfig{})
	p := dialFake(t, s, Options{})
	tests := []struct {
		name string
		mode *serial.Mode
	}{
		{"nil", nil},
		{"zero baud", &serial.Mode{}},
		{"negative baud", &serial.Mode{BaudRate: -1}},
		{"9 data bits", &serial.Mode{BaudRate: 9600, DataBits: 9}},
		{"4 data bits", &serial.Mode{BaudRate: 9600, DataBits: 4}},
		{"parity 7", &serial.Mode{BaudRate: 9600, Parity: 7}},
		{"stop bits 5", &serial.Mode{BaudRate: 9600, StopBits: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := p.SetMode(tt.mode); err == nil {
				t.Fatal("SetMode succeeded, want an error")
			}
		})
	}
	if err := p.SetMode(&serial.Mode{BaudRate: 921600}); err != nil {
		t.Fatalf("valid SetMode after invalid ones: %v", err)
	}
}

func TestDialRefused(t *testing.T) {
	s := newFakeServer(t, fakeConfig{greeting: []byte{0xFF, 0xFE, 44}})
	_, err := Dial(context.Background(), s.addr(), Options{})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("err = %v, want ErrRefused", err)
	}
}

func TestDialNoAnswerTimesOut(t *testing.T) {
	s := newFakeServer(t, fakeConfig{greeting: []byte{}})
	_, err := Dial(context.Background(), s.addr(), Options{DialTimeout: 200 * time.Millisecond})
	if err == nil {
		t.Fatal("Dial succeeded against a silent server")
	}
}

func TestDialContextCancelled(t *testing.T) {
	s := newFakeServer(t, fakeConfig{greeting: []byte{}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Dial(ctx, s.addr(), Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestReadTimeoutReturnsZeroNil(t *testing.T) {
	s := newFakeServer(t, fakeConfig{})
	p := dialFake(t, s, Options{})
	if err := p.SetReadTimeout(20 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := p.Read(buf)
	if n != 0 || err != nil {
		t.Fatalf("Read = %d, %v; want 0, nil", n, err)
	}
	s.send([]byte("x"))
	if err := p.SetReadTimeout(0); err != nil {
		t.Fatal(err)
	}
	var polled []byte
	for range 5000 { // poll until the byte has crossed loopback
		n, err := p.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if polled = append(polled, buf[:n]...); len(polled) > 0 {
			break
		}
	}
	if string(polled) != "x" {
		t.Fatalf("polling Read got %q, want x", polled)
	}
	if err := p.SetReadTimeout(-2 * time.Second); err == nil {
		t.Fatal("SetReadTimeout(-2s) accepted")
	}
}

func TestCloseWakesBlockedRead(t *testing.T) {
	s := newFakeServer(t, fakeConfig{})
	p := dialFake(t, s, Options{})
	if err := p.SetReadTimeout(serial.NoTimeout); err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() {
		_, err := p.Read(make([]byte, 8))
		res <- err
	}()
	s.waitRaw(t, len(clientHello)+len(greetingReplies))
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-res:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("blocked Read returned %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked 5s after Close")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for name, op := range map[string]func() error{
		"Read":   func() error { _, err := p.Read(make([]byte, 1)); return err },
		"Write":  func() error { _, err := p.Write([]byte{1}); return err },
		"SetDTR": func() error { return p.SetDTR(true) },
		"SetMode": func() error {
			return p.SetMode(&serial.Mode{BaudRate: 9600})
		},
		"GetModemStatusBits": func() error { _, err := p.GetModemStatusBits(); return err },
		"Drain":              p.Drain,
	} {
		if err := op(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

func TestServerHangUpIsEOF(t *testing.T) {
	s := newFakeServer(t, fakeConfig{})
	p := dialFake(t, s, Options{})
	s.send([]byte("bye"))
	s.hangUp()
	if err := p.SetReadTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	got, err := readN(p, 3)
	if err != nil || string(got) != "bye" {
		t.Fatalf("Read = %q, %v; want bye", got, err)
	}
	if _, err := p.Read(make([]byte, 8)); !errors.Is(err, io.EOF) {
		t.Fatalf("Read after hang-up: %v, want io.EOF", err)
	}
}

func TestModemStatus(t *testing.T) {
	s := newFakeServer(t, fakeConfig{})
	p := dialFake(t, s, Options{})
	// The greeting's NOTIFY-MODEMSTATE 0x30 arrives with or after DO
	// COM-PORT; a Read pumps it in if Dial stopped reading before it.
	waitModem := func(want serial.ModemStatusBits) {
		t.Helper()
		if err := p.SetReadTimeout(10 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		var last *serial.ModemStatusBits
		var err error
		for range 500 {
			last, err = p.GetModemStatusBits()
			if err == nil && *last == want {
				return
			}
			if _, rerr := p.Read(make([]byte, 1)); rerr != nil {
				t.Fatal(rerr)
			}
		}
		t.Fatalf("modem status = %+v, %v; want %+v", last, err, want)
	}
	waitModem(serial.ModemStatusBits{CTS: true, DSR: true})
	s.send([]byte{0xFF, 0xFA, 44, 107, 0xC0, 0xFF, 0xF0})
	waitModem(serial.ModemStatusBits{RI: true, DCD: true})
}

func TestModemStatusUnknown(t *testing.T) {
	s := newFakeServer(t, fakeConfig{greeting: []byte{0xFF, 0xFD, 44}})
	p := dialFake(t, s, Options{})
	if _, err := p.GetModemStatusBits(); !errors.Is(err, ErrNoModemState) {
		t.Fatalf("err = %v, want ErrNoModemState", err)
	}
}

func TestSignature(t *testing.T) {
	s := newFakeServer(t, fakeConfig{})
	p := dialFake(t, s, Options{})
	if err := p.request("signature", cmdSignature, nil, func([]byte) (bool, error) { return true, nil }); err != nil {
		t.Fatal(err)
	}
	if got := p.Signature(); got != "fake" {
		t.Fatalf("Signature = %q, want fake", got)
	}
}

func TestParseAddr(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		ign     bool
		wantErr bool
	}{
		{"127.0.0.1:4000", "127.0.0.1:4000", false, false},
		{"rfc2217://bench2:4000", "bench2:4000", false, false},
		{"RFC2217://bench2:4000", "bench2:4000", false, false},
		{"rfc2217://[::1]:4000", "[::1]:4000", false, false},
		{"rfc2217://bench2:4000?ign_set_control", "bench2:4000", true, false},
		{"rfc2217://bench2:4000?ign_set_control=1", "bench2:4000", true, false},
		{"rfc2217://bench2:4000?logging=debug", "", false, true},
		{"rfc2217://bench2", "", false, true},
		{"rfc2217://bench2:4000/x", "", false, true},
		{"bench2", "", false, true},
		{":4000", "", false, true},
		{"", "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ign, err := ParseAddr(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want || ign != tt.ign {
				t.Fatalf("got %q, %v; want %q, %v", got, ign, tt.want, tt.ign)
			}
		})
	}
}

func TestParserSplitInput(t *testing.T) {
	// One stream with every construct; fed in every two-way split.
	stream := []byte{
		'a', 0xFF, 0xFF, 'b',
		0xFF, 0xFB, 3, // WILL SGA
		'c',
		0xFF, 0xFA, 44, 101, 0x00, 0xFF, 0xFF, 0x01, 0x02, 0xFF, 0xF0, // SB with escaped 0xFF
		0xFF, 0xF1, // NOP
		'd', 0xFF, 0xFF,
	}
	wantData := []byte{'a', 0xFF, 'b', 'c', 'd', 0xFF}
	wantSub := []byte{44, 101, 0x00, 0xFF, 0x01, 0x02}
	for split := 0; split <= len(stream); split++ {
		var cmds [][2]byte
		var subs [][]byte
		ps := parser{
			onCommand: func(v, o byte) { cmds = append(cmds, [2]byte{v, o}) },
			onSub:     func(d []byte) { subs = append(subs, append([]byte(nil), d...)) },
		}
		out := ps.feed(stream[:split], nil)
		out = ps.feed(stream[split:], out)
		if !bytes.Equal(out, wantData) {
			t.Fatalf("split %d: data % x, want % x", split, out, wantData)
		}
		if len(cmds) != 1 || cmds[0] != [2]byte{0xFB, 3} {
			t.Fatalf("split %d: commands %v", split, cmds)
		}
		if len(subs) != 1 || !bytes.Equal(subs[0], wantSub) {
			t.Fatalf("split %d: subs % x, want % x", split, subs, wantSub)
		}
	}
}

func TestUnescapedLen(t *testing.T) {
	data := []byte{1, 0xFF, 2}
	for n, want := range []int{0, 1, 1, 2, 3} { // escaped: 01 FF FF 02
		if got := unescapedLen(data, n); got != want {
			t.Errorf("unescapedLen(%d) = %d, want %d", n, got, want)
		}
	}
}

// TestRoundTripProperty checks that arbitrary bytes (0xFF included) arrive
// intact in both directions, with the server's stream cut into random
// chunks and telnet commands interleaved between data bytes.
func TestRoundTripProperty(t *testing.T) {
	s := newFakeServer(t, fakeConfig{})
	p := dialFake(t, s, Options{})
	if err := p.SetReadTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	s.waitRaw(t, len(clientHello)+len(greetingReplies))
	noise := [][]byte{
		{0xFF, 0xF1},                                  // NOP
		{0xFF, 0xFB, 3},                               // WILL SGA (already agreed: no reply)
		{0xFF, 0xFA, 44, 107, 0x30, 0xFF, 0xF0},       // NOTIFY-MODEMSTATE
		{0xFF, 0xFA, 44, 106, 0xFF, 0xFF, 0xFF, 0xF0}, // NOTIFY-LINESTATE with escaped 0xFF
	}
	rapid.Check(t, func(rt *rapid.T) {
		data := rapid.SliceOfN(rapid.OneOf(rapid.Byte(), rapid.Just(byte(0xFF))), 1, 600).Draw(rt, "data")

		// client -> server
		if n, err := p.Write(data); err != nil || n != len(data) {
			rt.Fatalf("Write = %d, %v", n, err)
		}
		s.waitFor(rt, "data", func() bool { return len(s.data) >= len(data) })
		if got := s.takeData(); !bytes.Equal(got, data) {
			rt.Fatalf("server decoded % x, want % x", got, data)
		}

		// server -> client, with commands between data bytes, in chunks
		var stream []byte
		for i, b := range data {
			if rapid.IntRange(0, 9).Draw(rt, "noise?") == 0 {
				stream = append(stream, noise[rapid.IntRange(0, len(noise)-1).Draw(rt, "noise")]...)
			}
			stream = append(stream, tnEscape(data[i:i+1])...)
			_ = b
		}
		for len(stream) > 0 {
			n := rapid.IntRange(1, len(stream)).Draw(rt, "chunk")
			s.send(stream[:n])
			stream = stream[n:]
		}
		got, err := readN(p, len(data))
		if err != nil {
			rt.Fatalf("Read: %v", err)
		}
		if !bytes.Equal(got, data) {
			rt.Fatalf("client read % x, want % x", got, data)
		}
	})
}

// readN reads exactly n bytes, treating (0, nil) as a timeout error.
func readN(p serial.Port, n int) ([]byte, error) {
	got := make([]byte, 0, n)
	buf := make([]byte, 1024)
	for len(got) < n {
		k, err := p.Read(buf[:min(len(buf), n-len(got))])
		if err != nil {
			return got, err
		}
		if k == 0 {
			return got, errors.New("read timeout")
		}
		got = append(got, buf[:k]...)
	}
	return got, nil
}

// FuzzParser checks that the parser never panics, never emits more data
// than it was given, and passes escaped data through unchanged however the
// input is split.
func FuzzParser(f *testing.F) {
	f.Add([]byte{0xFF, 0xFF, 'a', 0xFF, 0xFA, 44, 107, 0x30, 0xFF, 0xF0}, uint(3))
	f.Add([]byte{0xFF, 0xFB, 44, 0xFF, 0xFA, 0xFF, 0xFF, 0xFF}, uint(1))
	f.Fuzz(func(t *testing.T, in []byte, split uint) {
		var ps parser
		ps.onCommand = func(byte, byte) {}
		ps.onSub = func([]byte) {}
		if out := ps.feed(in, nil); len(out) > len(in) {
			t.Fatalf("%d data bytes from %d input bytes", len(out), len(in))
		}
		enc := escape(nil, in)
		k := int(split % uint(len(enc)+1))
		var clean parser
		out := clean.feed(enc[:k], nil)
		out = clean.feed(enc[k:], out)
		if !bytes.Equal(out, in) {
			t.Fatalf("escaped round trip: % x -> % x", in, out)
		}
	})
}
