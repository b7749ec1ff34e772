package mockdps

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hiltest/hiltest/reference"
)

// TestCapLog checks the kept items, their numbering and the key index
// against a plain list of everything added.
func TestCapLog(t *testing.T) {
	type add struct {
		v   int
		key string
	}
	adds := func(keys ...string) []add {
		out := make([]add, len(keys))
		for i, k := range keys {
			out[i] = add{v: 100 + i, key: k}
		}
		return out
	}
	tests := []struct {
		name string
		max  int
		adds []add
	}{
		{"empty", 3, nil},
		{"under max", 5, adds("a", "b", "a")},
		{"exactly max", 3, adds("a", "b", "a")},
		{"wrapped", 3, adds("a", "b", "a", "c", "a", "a", "b")},
		{"key dropped entirely", 2, adds("x", "x", "y", "y", "y")},
		{"unindexed items", 3, adds("", "a", "", "", "a", "")},
		{"max 1", 1, adds("a", "b", "b", "a")},
		{"keeps none", 0, adds("a", "b")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l capLog[int]
			l.max = tt.max
			for _, a := range tt.adds {
				l.add(a.v, a.key)
			}
			// The reference: everything added, numbered, the last max kept.
			type item struct {
				n, v int
				key  string
			}
			var kept []item
			if tt.max > 0 {
				for i, a := range tt.adds {
					kept = append(kept, item{i, a.v, a.key})
				}
				kept = kept[max(0, len(kept)-tt.max):]
			}
			total := 0
			if tt.max > 0 {
				total = len(tt.adds)
			}
			if got := l.count(); got != total {
				t.Errorf("count = %d, want %d", got, total)
			}
			want := func(keep func(item) bool) []int {
				var out []int
				for _, it := range kept {
					if keep(it) {
						out = append(out, it.v)
					}
				}
				return out
			}
			if got, w := l.all(), want(func(item) bool { return true }); !slices.Equal(got, w) || got == nil {
				t.Errorf("all = %v, want %v (non-nil)", got, w)
			}
			for n := -1; n <= len(tt.adds)+1; n++ {
				if got, w := l.since(n), want(func(it item) bool { return it.n >= n }); !slices.Equal(got, w) {
					t.Errorf("since(%d) = %v, want %v", n, got, w)
				}
				for _, k := range []string{"a", "b", "c", "x", "y", "z"} {
					if got, w := l.keyed(k, n), want(func(it item) bool { return it.key == k && it.n >= n }); !slices.Equal(got, w) {
						t.Errorf("keyed(%q, %d) = %v, want %v", k, n, got, w)
					}
				}
			}
			// The index holds exactly the kept items' keys.
			keys := map[string]bool{}
			for _, it := range kept {
				if it.key != "" {
					keys[it.key] = true
				}
			}
			if len(l.byKey) != len(keys) {
				t.Errorf("index has %d keys, want %d: %v", len(l.byKey), len(keys), l.byKey)
			}
		})
	}
}

// TestCapLogFixOnce checks an item is completed once however often it is
// read, and that reads return the completed item.
func TestCapLogFixOnce(t *testing.T) {
	type rec struct {
		done  bool
		fixes *int
	}
	fixes := 0
	l := capLog[rec]{max: 2, fix: func(r *rec) {
		if !r.done {
			r.done = true
			*r.fixes++
		}
	}}
	for range 3 {
		l.add(rec{fixes: &fixes}, "k")
	}
	for range 3 {
		for _, r := range append(l.all(), l.keyed("k", 0)...) {
			if !r.done {
				t.Fatal("an item was handed out before it was completed")
			}
		}
		_ = l.since(2)
	}
	if fixes != 2 {
		t.Errorf("%d completions for 2 kept items", fixes)
	}
}

// TestRequestsFor checks the lookups by registration id and by number
// against filtering the full copies of Requests and Diagnoses, with and
// without requests dropped from the capture.
func TestRequestsFor(t *testing.T) {
	tests := []struct {
		name        string
		maxRequests int
	}{
		{"all kept", 0},
		{"latest 3 kept", 3},
		{"none kept", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewTestServer(t, Options{Now: newClock().Now, MaxRequests: tt.maxRequests})
			good := sas(t, reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey}).Token
			upper := strings.ToUpper(DemoDevice1)
			wrong1 := sas(t, reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice2PrimaryKey}).Token
			wrong2 := sas(t, reference.SASParams{RegistrationID: DemoDevice2, Key: DemoDevice1PrimaryKey}).Token
			reqs := [][]byte{
				registerBytes(t, s, DemoDevice1, good),
				registerBytes(t, s, DemoDevice2, wrong2),
				registerBytes(t, s, upper, sas(t, reference.SASParams{RegistrationID: upper, Key: DemoDevice1PrimaryKey}).Token),
				registerBytes(t, s, DemoDevice1, wrong1),
				statusBytes(t, s, DemoDevice1, good),
				rawRequest(s.Host(), "GET", "/nowhere", nil, ""),
			}
			c := dialRaw(t, s)
			counts := []int{s.RequestCount()}
			for _, r := range reqs {
				c.do(r)
				counts = append(counts, s.RequestCount())
			}
			if tt.maxRequests < 0 {
				if n := s.RequestCount(); n != 0 {
					t.Errorf("RequestCount = %d with none kept", n)
				}
			} else {
				for i, n := range counts {
					if n != i {
						t.Errorf("RequestCount after %d requests = %d", i, n)
					}
				}
			}
			all, diags := s.Requests(), s.Diagnoses()
			if tt.maxRequests > 0 && len(all) != tt.maxRequests {
				t.Fatalf("%d requests kept, want %d", len(all), tt.maxRequests)
			}
			var wantDiags int
			for _, q := range all {
				if q.Diagnosis != nil {
					wantDiags++
				}
			}
			if tt.maxRequests == 0 && wantDiags < 2 {
				t.Fatalf("only %d rejected requests: %v", wantDiags, diags)
			}
			for _, id := range []string{DemoDevice1, upper, "Demo-Device-1", DemoDevice2, "demo-device-3", ""} {
				var want []Request
				for _, q := range all {
					if id != "" && strings.EqualFold(q.RegistrationID, id) {
						want = append(want, q)
					}
				}
				if got := s.RequestsFor(id); !reflect.DeepEqual(got, want) {
					t.Errorf("RequestsFor(%q): %d requests, want %d", id, len(got), len(want))
				}
				var wantD []Diagnosis
				for _, d := range diags {
					if id != "" && strings.EqualFold(d.RegistrationID, id) {
						wantD = append(wantD, d)
					}
				}
				if got := s.DiagnosesFor(id); !reflect.DeepEqual(got, wantD) {
					t.Errorf("DiagnosesFor(%q) = %v, want %v", id, got, wantD)
				}
				for n := 0; n <= len(reqs); n++ {
					var wantN []Request
					for _, q := range s.RequestsSince(n) {
						if id != "" && strings.EqualFold(q.RegistrationID, id) {
							wantN = append(wantN, q)
						}
					}
					if got := s.RequestsForSince(id, n); !reflect.DeepEqual(got, wantN) {
						t.Errorf("RequestsForSince(%q, %d): %d requests, want %d", id, n, len(got), len(wantN))
					}
				}
			}
			for n := 0; n <= len(reqs)+1; n++ {
				first := max(0, s.RequestCount()-len(all))
				want := all[min(len(all), max(0, n-first)):]
				if len(want) == 0 {
					want = nil
				}
				if got := s.RequestsSince(n); !reflect.DeepEqual(got, want) {
					t.Errorf("RequestsSince(%d): %d requests, want %d", n, len(got), len(want))
				}
			}
			// Kept requests are parsed: the request line and headers are there.
			for i, q := range all {
				if q.Method == "" || q.RequestURI == "" || len(q.Header) == 0 {
					t.Errorf("request %d not parsed: %q %q %d headers", i, q.Method, q.RequestURI, len(q.Header))
				}
			}
		})
	}
}

// BenchmarkRequestsFor compares reading one registration's requests with
// copying the whole capture (10000 kept requests of 500 registrations).
func BenchmarkRequestsFor(b *testing.B) {
	s := NewTestServer(b, Options{MaxRequests: 10000})
	raw := []byte("GET /0ne00DEMO01/registrations/dev/operations/op?api-version=2021-06-01 HTTP/1.1\r\nHost: x\r\nAuthorization: y\r\n\r\n")
	for i := range 10000 {
		id := "dev-" + itoa(i%500)
		s.record(Request{RegistrationID: id, Raw: raw, Status: 202, RetryAfter: -1})
	}
	s.Requests() // parse every request once: measure the reads alone
	b.Run("RequestsFor", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if len(s.RequestsFor("dev-"+itoa(i%500))) != 20 {
				b.Fatal("wrong count")
			}
		}
	})
	b.Run("Requests", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if len(s.Requests()) != 10000 {
				b.Fatal("wrong count")
			}
		}
	})
}

// TestKeptBody checks a captured body is the raw request's tail when the
// raw bytes end with it, and otherwise a copy that does not hold on to the
// buffer it was read into.
func TestKeptBody(t *testing.T) {
	head := "PUT /s/registrations/d/register HTTP/1.1\r\nContent-Length: 20\r\n\r\n"
	body := `{"registrationId":"d"}`
	chunked := "PUT /s/registrations/d/register HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n16\r\n" + body + "\r\n0\r\n\r\n"
	readBuf := func(s string) []byte { return append(make([]byte, 0, 512), s...) } // as io.ReadAll leaves it
	tests := []struct {
		name      string
		raw, body []byte
		aliasRaw  bool
	}{
		{"no body", []byte(head), nil, false},
		{"empty body", []byte(head), readBuf(""), false},
		{"content-length body", []byte(head + body), readBuf(body), true},
		{"chunked body", []byte(chunked), readBuf(body), false},
		{"truncated raw", []byte(head + body[:5]), readBuf(body), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := keptBody(tt.raw, tt.body)
			if !bytes.Equal(got, tt.body) || (got == nil) != (tt.body == nil) {
				t.Fatalf("keptBody = %q, want %q", got, tt.body)
			}
			if len(got) == 0 {
				return
			}
			if cap(tt.body) > len(tt.body) && &got[:cap(got)][cap(got)-1] == &tt.body[:cap(tt.body)][cap(tt.body)-1] {
				t.Error("the kept body is the read buffer")
			}
			inRaw := &got[0] == &tt.raw[len(tt.raw)-len(got)]
			if inRaw != tt.aliasRaw || (inRaw && cap(got) != len(got)) {
				t.Errorf("kept in raw: %v (cap %d), want %v", inRaw, cap(got), tt.aliasRaw)
			}
			if cap(got) >= 512 {
				t.Errorf("kept body has capacity %d", cap(got))
			}
		})
	}
}
