package harness

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/mockdps"
)

// startMockDPS starts the mock DPS of a bench in mock mode and describes it
// as the bench's DPS target. The bench's dps section decides where the mock
// listens (ListenAddr), which names its certificate covers (CertNames) and
// the host boards are told to connect to (ConnectHost); the port boards get
// is the one the mock actually listens on (the bench may ask for port 0).
// Options the caller set in mo win over the bench's; the bench's SANs are
// added to the caller's.
func startMockDPS(d boards.BenchDPS, mo mockdps.Options, now func() time.Time) (DPSTarget, *mockdps.Server, error) {
	if mo.Enrollments == nil {
		if d.Enrollments != "" {
			e, err := mockdps.LoadEnrollments(d.Enrollments)
			if err != nil {
				return DPSTarget{}, nil, fmt.Errorf("open bench: %w", err)
			}
			mo.Enrollments = e
		} else {
			mo.Enrollments = mockdps.DemoEnrollments()
		}
	}
	if mo.Now == nil {
		mo.Now = now
	}
	if mo.AssignDelay == 0 {
		mo.AssignDelay = d.AssignDelay
	}
	if mo.RetryAfter == 0 {
		mo.RetryAfter = d.RetryAfter
	}
	if mo.Listen == "" {
		mo.Listen = d.ListenAddr()
	}
	mo.SANs = mergeNames(mo.SANs, d.CertNames())
	srv, err := mockdps.Start(mo)
	if err != nil {
		return DPSTarget{}, nil, fmt.Errorf("open bench: start mock DPS: %w", err)
	}
	t, err := MockTarget(srv, mo.Enrollments)
	if err != nil {
		srv.Close()
		return DPSTarget{}, nil, fmt.Errorf("open bench: %w", err)
	}
	host := d.ConnectHost()
	if l, ok := srv.Addr().(*net.TCPAddr); ok && host != "" {
		t.Host, t.Port = host, l.Port
	}
	return t, srv, nil
}

// mergeNames returns a followed by the names of b not in a.
func mergeNames(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, n := range b {
		seen := false
		for _, x := range out {
			if x == n {
				seen = true
				break
			}
		}
		if !seen {
			out = append(out, n)
		}
	}
	return out
}

// mockEndpoint is host:port for a log line.
func mockEndpoint(t DPSTarget) string {
	return net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
}
