package sim

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hiltest/hiltest/protocol"
	"github.com/hiltest/hiltest/reference"
)

func TestManyBoardsConcurrently(t *testing.T) {
	dir := t.TempDir()
	const n = 6
	cfgs := make([]Config, n)
	for i := range cfgs {
		cfgs[i] = Config{Name: fmt.Sprintf("sim-%d", i+1), LinkDir: dir, Seed: 7, Dialect: Dialects()[i%3]}
	}
	boards, err := StartBench(context.Background(), cfgs)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, b := range boards {
			if err := b.Close(); err != nil {
				t.Error(err)
			}
		}
	}()
	macs := map[string]bool{}
	for _, b := range boards {
		if macs[b.MAC()] {
			t.Errorf("MAC %s twice", b.MAC())
		}
		macs[b.MAC()] = true
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, b := range boards {
		c := openClient(t, b.Link())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.tryWaitEvent(protocol.EventReady, 10*time.Second); err != nil {
				errs <- fmt.Errorf("%s: READY: %w", b.Name(), err)
				return
			}
			for i := 0; i < 20; i++ {
				id := fmt.Sprintf("%s-%d", b.RegistrationID(), i)
				seq := c.send(protocol.VerbSAS, protocol.String("id_scope", testScope), protocol.String("reg_id", id),
					protocol.String("key", katDevKey), protocol.Int("expiry", 1900000000))
				f, err := c.response(seq, 10*time.Second)
				if err != nil {
					errs <- fmt.Errorf("%s: %w", b.Name(), err)
					return
				}
				want, _ := reference.NewSAS(reference.SASParams{Dialect: reference.Dialect(b.Dialect()), IDScope: testScope,
					RegistrationID: id, Key: katDevKey, Expiry: 1900000000, KeyName: reference.Dialect(b.Dialect()).DefaultKeyName()})
				if f.String("token") != want.Token {
					errs <- fmt.Errorf("%s: token %q, want %q", b.Name(), f.String("token"), want.Token)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestStartBenchErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		cfgs []Config
		want string
	}{
		{[]Config{{Name: "a", LinkDir: dir}, {Name: "a", LinkDir: dir}}, "two boards named"},
		{[]Config{{Name: "a", LinkDir: dir, Dialect: "python"}}, "unknown dialect"},
		{[]Config{{Name: "a", LinkDir: dir, Bugs: []string{"typo"}}}, "unknown bug"},
		{[]Config{{Name: "a", LinkDir: dir, Faults: "noise=7"}}, "fault spec"},
		{[]Config{{Name: "", LinkDir: dir}}, "name is empty"},
		{[]Config{{Name: "a/b", LinkDir: dir}}, "plain file name"},
		{[]Config{{Name: "ok", LinkDir: dir}, {Name: "bad", LinkDir: dir, Baud: -1}}, "negative baud"},
	} {
		_, err := StartBench(context.Background(), tt.cfgs)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: err = %v, want %q", tt.cfgs, err, tt.want)
		}
	}
}

func TestBugsList(t *testing.T) {
	if len(Bugs()) != 11 {
		t.Errorf("%d bugs", len(Bugs()))
	}
	for _, b := range Bugs() {
		if b.Description == "" {
			t.Errorf("%s has no description", b.Name)
		}
		if _, ok := LookupBug(b.Name); !ok {
			t.Errorf("LookupBug(%s) fails", b.Name)
		}
	}
}

// BenchmarkPacedOutput measures the line speed a board at 115200 baud
// achieves: it should report about 11520 bytes/s.
func BenchmarkPacedOutput(b *testing.B) {
	brd := startBoard(b, Config{Seed: 1, Baud: 115200})
	c := openClient(b, brd.Link())
	c.waitEvent(protocol.EventReady, 10*time.Second)
	payload := strings.Repeat("u", 2000)
	var bytes int
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		f := c.ok(protocol.VerbPing, protocol.String("data", payload))
		enc, _ := protocol.Encode(f, 0)
		bytes += len(enc)
	}
	el := time.Since(start)
	b.ReportMetric(float64(bytes)/el.Seconds(), "bytes/s")
}

// BenchmarkSASRoundTrip measures an unpaced request/answer round trip
// through the pty.
func BenchmarkSASRoundTrip(b *testing.B) {
	brd := startBoard(b, Config{Seed: 1})
	c := openClient(b, brd.Link())
	c.waitEvent(protocol.EventReady, 10*time.Second)
	for i := 0; i < b.N; i++ {
		c.ok(protocol.VerbSAS, protocol.String("id_scope", testScope), protocol.String("reg_id", "bench-1"),
			protocol.String("key", katDevKey), protocol.Int("expiry", 1900000000))
	}
}

// BenchmarkPingRoundTrip is the per-request cost of the simulator's
// request path (host client included) on an unpaced board.
func BenchmarkPingRoundTrip(b *testing.B) {
	brd := startBoard(b, Config{Seed: 1})
	c := openClient(b, brd.Link())
	c.waitEvent(protocol.EventReady, 10*time.Second)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.ok(protocol.VerbPing, protocol.String("data", "hello board"))
	}
}
