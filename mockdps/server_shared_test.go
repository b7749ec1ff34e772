package mockdps

import (
	"io"
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
