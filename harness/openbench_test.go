package harness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/mockdps"
	"github.com/hiltest/hiltest/protocol"
)

// TestOpenBenchMockDPSAddresses brings up benches whose dps: section says
// where the mock listens, which host boards connect to and which extra names
// its certificate covers, registers a simulated board through it, and checks
// what the board was told (DPS.CONFIG host and the mock's real port), what
// it sent (SNI and Host header) and the names the certificate covers.
func TestOpenBenchMockDPSAddresses(t *testing.T) {
	const board = `boards:
  - name: sim-dps
    profile: sim
    dialect: default
    firmware: hiltest-agent
    revision: B
    labels: [test]
    sim:
      seed: 3
`
	tests := []struct {
		name     string
		dps      string
		wantHost string
		certName string // a name the certificate must cover besides wantHost
	}{
		{"host localhost", "dps:\n  mode: mock\n  listen: \"127.0.0.1:0\"\n  host: localhost\n", "localhost", ""},
		{"default listen, extra SAN", "dps:\n  mode: mock\n  san: [dps.bench.example]\n", "127.0.0.1", "dps.bench.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bench, err := boards.ParseBench([]byte(board+tt.dps), "bench.yaml")
			require.NoError(t, err)
			bs := openSimBench(t, bench, BenchOptions{})
			m := bs.Member("sim-dps")
			require.NotNil(t, m)
			require.NoError(t, m.SetupErr)
			require.NotNil(t, bs.DPS.Mock)

			port := bs.DPS.Mock.Addr().(*net.TCPAddr).Port
			assert.Equal(t, tt.wantHost, bs.DPS.Host)
			assert.NotZero(t, port)
			assert.Equal(t, port, bs.DPS.Port, "boards get the port the mock listens on")
			assert.Contains(t, m.Setup, protocol.VerbDPSConfig)

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			f, err := m.Board.Call(ctx, protocol.VerbDPSRegister,
				protocol.String("id_scope", bs.DPS.IDScope), protocol.String("reg_id", mockdps.DemoDevice1),
				protocol.String("key", mockdps.DemoDevice1PrimaryKey), protocol.Int("ttl", 3600))
			require.NoError(t, err, "the board's TLS check of %s must pass", tt.wantHost)
			assert.Equal(t, "assigned", f.String("status"))

			reqs := bs.DPS.Mock.Requests()
			require.NotEmpty(t, reqs)
			r := reqs[0]
			if net.ParseIP(tt.wantHost) == nil {
				assert.Equal(t, tt.wantHost, r.SNI, "the board connected by name")
			}
			var host string
			for _, h := range r.Header {
				if h[0] == "Host" {
					host = h[1]
				}
			}
			assert.Equal(t, net.JoinHostPort(tt.wantHost, strconv.Itoa(port)), host)

			if tt.certName != "" {
				pool := x509.NewCertPool()
				require.True(t, pool.AppendCertsFromPEM(bs.DPS.CAPEM))
				c, err := tls.Dial("tcp", bs.DPS.Mock.Addr().String(), &tls.Config{RootCAs: pool, ServerName: tt.certName, MinVersion: tls.VersionTLS12})
				require.NoError(t, err, "the certificate covers %s", tt.certName)
				require.NoError(t, c.Close())
			}
		})
	}
}
