package mockdps

import (
	"context"
	"crypto/x509"
	"testing"
	"time"
)

// BenchmarkRegisterFlow measures full register flows (PUT + GET over
// keep-alive TLS) from 64 concurrent devices against the mock; b.N flows.
// Compare with BenchmarkBareTLSCeiling, run in the same invocation:
//
//	go test -run XXX -bench 'RegisterFlow|BareTLSCeiling' ./mockdps
func BenchmarkRegisterFlow(b *testing.B) {
	s := NewTestServer(b, Options{RetryAfter: RetryImmediately, MaxRequests: 1000})
	benchFlows(b, s.URL(), s.CertPool())
}

// BenchmarkBareTLSCeiling runs the same load against a TLS handler that does
// no work: the ceiling the mock's flows/s is measured against.
func BenchmarkBareTLSCeiling(b *testing.B) {
	s := NewTestServer(b, Options{})
	bare, err := startBare(s.certs.server)
	if err != nil {
		b.Fatal(err)
	}
	defer bare.close()
	benchFlows(b, bare.url, s.CertPool())
}

func benchFlows(b *testing.B, url string, pool *x509.CertPool) {
	b.ResetTimer()
	res, err := RunLoad(context.Background(), LoadOptions{URL: url, RootCAs: pool, Devices: 64,
		Duration: time.Minute, MaxFlows: int64(b.N)})
	if err != nil {
		b.Fatal(err)
	}
	if res.Errors > 0 {
		b.Fatalf("%d errors: %s", res.Errors, res.FirstError)
	}
	b.ReportMetric(res.FlowsPerSec, "flows/s")
	b.ReportMetric(float64(res.P50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(res.P99.Microseconds()), "p99-µs")
}

// TestRunLoad checks the load generator end to end on a short bounded run:
// every flow is one PUT and one GET and none fails.
func TestRunLoad(t *testing.T) {
	s := NewTestServer(t, Options{RetryAfter: RetryImmediately, MaxRequests: 100})
	res, err := RunLoad(context.Background(), LoadOptions{URL: s.URL(), RootCAs: s.CertPool(), Devices: 8, Conns: 4,
		Duration: time.Minute, MaxFlows: 200})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Flows < 200 || res.RequestsPerFlow() != 2 {
		t.Fatalf("%s", res)
	}
	if res.P50 <= 0 || res.P99 < res.P50 || res.Max < res.P99 {
		t.Errorf("percentiles %s", res)
	}
}

func TestRunLoadLoopbackOnly(t *testing.T) {
	for _, u := range []string{"", "https://global.azure-devices-provisioning.net", "https://192.168.1.10:8443", "://bad"} {
		if _, err := RunLoad(context.Background(), LoadOptions{URL: u, Duration: time.Millisecond}); err == nil {
			t.Errorf("RunLoad accepted %q", u)
		}
	}
	for _, u := range []string{"https://127.0.0.1:1", "https://[::1]:1", "https://localhost:1"} {
		if err := checkLoopbackURL(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}
