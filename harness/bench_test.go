package harness

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiltest/hiltest/boards"
)

func TestLiveDPS(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644))
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name    string
		dps     boards.BenchDPS
		env     map[string]string
		errPart string
		check   func(t *testing.T, d DPSTarget)
	}{
		{name: "no scope", dps: boards.BenchDPS{Mode: "live"}, errPart: "no id_scope"},
		{name: "no keys", dps: boards.BenchDPS{Mode: "live", IDScope: "0ne00ABCDEF"}, errPart: "set HILTEST_DPS_GROUP_KEY"},
		{name: "group key, default endpoint", dps: boards.BenchDPS{Mode: "live", IDScope: "0ne00ABCDEF", GroupKeyEnv: "MY_GROUP"},
			env: map[string]string{"MY_GROUP": testGroupKey},
			check: func(t *testing.T, d DPSTarget) {
				assert.Equal(t, "global.azure-devices-provisioning.net", d.Endpoint())
				require.Len(t, d.Enrollments.Groups, 1)
				assert.Equal(t, testGroupKey, d.Enrollments.Groups[0].PrimaryKey)
				assert.Nil(t, d.Mock)
				assert.Empty(t, d.CAPEM)
			}},
		{name: "individual key, endpoint with port, CA, API version",
			dps: boards.BenchDPS{Mode: "live", IDScope: "0ne00ABCDEF", Endpoint: "dps.example.net:8443", APIVersion: "2021-10-01"},
			env: map[string]string{EnvDPSKey: testDeviceKey, "HILTEST_DPS_REGISTRATION_ID": "dev-1", EnvDPSCAFile: ca},
			check: func(t *testing.T, d DPSTarget) {
				assert.Equal(t, "dps.example.net:8443", d.Endpoint())
				assert.Equal(t, "2021-10-01", d.APIVersion)
				require.Len(t, d.Enrollments.Individual, 1)
				assert.Equal(t, "dev-1", d.Enrollments.Individual[0].RegistrationID)
				assert.Equal(t, "-----BEGIN CERTIFICATE-----\n", string(d.CAPEM))
			}},
		{name: "missing CA file", dps: boards.BenchDPS{Mode: "live", IDScope: "0ne00ABCDEF"},
			env: map[string]string{EnvDPSGroupKey: testGroupKey, EnvDPSCAFile: "/nonexistent/ca.pem"}, errPart: "trust anchor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := liveDPS(tt.dps, env(tt.env))
			if tt.errPart != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.errPart)
				return
			}
			require.NoError(t, err)
			tt.check(t, d)
		})
	}
}

func TestOpenBenchBadInputs(t *testing.T) {
	_, err := OpenBench(t.Context(), nil, BenchOptions{})
	require.Error(t, err)
	_, err = OpenBench(t.Context(), &boards.Bench{DPS: boards.BenchDPS{Mode: "live"}}, BenchOptions{Getenv: func(string) string { return "" }})
	require.ErrorContains(t, err, "no id_scope")
	_, err = OpenBench(t.Context(), &boards.Bench{DPS: boards.BenchDPS{Enrollments: "/nonexistent/enrollments.yaml"}}, BenchOptions{})
	require.ErrorContains(t, err, "enrollments.yaml")

	// A board whose port does not exist is kept with its setup error; the
	// bench as a whole opens.
	bs, err := OpenBench(t.Context(), &boards.Bench{Boards: []boards.BenchBoard{{Name: "gone", Profile: "ch340", Port: "/dev/ttyUSB-nonexistent"}}},
		BenchOptions{Session: func(c *SessionConfig) { c.ReconnectTimeout = 100 * time.Millisecond }})
	require.NoError(t, err)
	defer bs.Close()
	m := bs.Member("gone")
	require.NotNil(t, m)
	require.Error(t, m.SetupErr)
	assert.Nil(t, bs.Board("gone"))
	rep, err := Run(t.Context(), bs, RunOptions{Cases: []Case{{ID: "x", Run: func(ctx context.Context, t *T) {}}}})
	require.NoError(t, err)
	c := rep.Case("gone", "x")
	assert.Equal(t, StatusError, c.Status)
	assert.Contains(t, c.Message, "board setup failed: open /dev/ttyUSB-nonexistent")
}
