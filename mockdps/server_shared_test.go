package mockdps

import (
	"crypto/tls"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestSharedClientReusesOneClient(t *testing.T) {
	s, err := Start(Options{})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	defer s.Close()
	c := s.SharedClient()
	if c != s.SharedClient() {
		t.Fatal("SharedClient returned two different clients")
	}
	for i := range 2 {
		resp, err := c.Get(s.URL() + "/")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func TestServerNegotiatesClassicGroup(t *testing.T) {
	s, err := Start(Options{})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	defer s.Close()
	tests := []struct {
		name  string
		curve []tls.CurveID // client's groups; nil = Go's defaults (hybrid first)
	}{
		{name: "default client", curve: nil},
		{name: "P-256 only", curve: []tls.CurveID{tls.CurveP256}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := strings.TrimPrefix(s.URL(), "https://")
			c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: s.CertPool(), ServerName: "localhost", CurvePreferences: tt.curve})
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			got := c.ConnectionState().CurveID
			if !slices.Contains(mockCurves(), got) {
				t.Fatalf("negotiated group %v, want one of %v", got, mockCurves())
			}
		})
	}
}
