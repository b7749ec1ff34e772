package ser2nettest_test

import (
	"testing"

	"github.com/creack/pty"
	"github.com/hiltest/hiltest/internal/ser2nettest"
)

// A test exports a pty's device end over RFC 2217 and connects to
// "rfc2217://"+srv.Addr(). Stop and Start again simulate a server that
// goes away and comes back on the same address.
func Example() {
	testExport := func(t *testing.T) {
		master, slave, err := pty.Open()
		if err != nil {
			t.Fatalf("open pty: %v", err)
		}
		defer master.Close()
		defer slave.Close()
		srv := ser2nettest.New(t, slave.Name())
		srv.Start()
		t.Logf("exported %s at rfc2217://%s", slave.Name(), srv.Addr())
		srv.Stop()
		srv.Start()
		t.Logf("ser2net output:\n%s", srv.Output())
	}
	_ = testExport
}
