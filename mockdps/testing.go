package mockdps

import "testing"

// NewTestServer starts a mock DPS for a test and closes it when the test
// ends; it fails the test if the server cannot start.
func NewTestServer(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := Start(opts)
	if err != nil {
		tb.Fatalf("mockdps: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("mockdps close: %v", err)
		}
	})
	return s
}
