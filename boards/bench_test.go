package boards

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hiltest/hiltest/boards/sim"
	"github.com/hiltest/hiltest/reference"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadBenchExample(t *testing.T) {
	b, err := LoadBench("testdata/bench.yaml")
	require.NoError(t, err)
	require.Len(t, b.Boards, 5)
	d := b.Boards[0]
	assert.Equal(t, "devkit-1", d.Name)
	assert.Equal(t, "esp32-devkitc", d.Profile)
	assert.Equal(t, 115200, d.Baud)
	assert.Equal(t, "1.1", d.Revision)
	assert.Equal(t, "azure-iot-sdk-c", d.Dialect)
	assert.Equal(t, []string{"lab-a", "cp2102n"}, d.Labels)
	assert.Equal(t, 6, d.Line)
	assert.Equal(t, "esptool.py --chip esp32 --port /dev/ttyUSB0 write_flash 0x10000 fw.bin", d.FlashCommand("/dev/ttyUSB0", "fw.bin"))
	assert.Equal(t, &USBMatch{VID: "303a", PID: "1001", Serial: "F4:12:FA:4C:2A:10"}, b.Boards[1].USB)
	assert.Equal(t, "rfc2217://bench-pi.lan:4000", b.Boards[2].Port)
	assert.Equal(t, &SimSpec{Seed: 1}, b.Boards[3].Sim)
	assert.Equal(t, &SimSpec{Bug: "group-key-signing", Faults: "noise=0.1,corrupt=0.01", Seed: 42}, b.Boards[4].Sim)
	assert.Equal(t, BenchDPS{Mode: "mock", AssignDelay: 1500 * time.Millisecond, RetryAfter: 1,
		Listen: "0.0.0.0:8443", Host: "hiltest-host.lan", SANs: []string{"hiltest-host", "192.168.1.20"}, Line: 47}, b.DPS)
	assert.Equal(t, []string{"hiltest-host.lan", "hiltest-host", "192.168.1.20"}, b.DPS.CertNames())
	assert.Equal(t, BenchWiFi{SSIDEnv: "HILTEST_WIFI_SSID", PasswordEnv: "HILTEST_WIFI_PASSWORD"}, b.WiFi)
}

func TestLoadBenchLive(t *testing.T) {
	b, err := LoadBench("testdata/bench-live.yaml")
	require.NoError(t, err)
	assert.Equal(t, &USBMatch{VID: "10c4", PID: "ea60"}, b.Boards[0].USB)
	assert.Equal(t, "live", b.DPS.Mode)
	assert.Equal(t, "0ne00ABCDEF", b.DPS.IDScope)
	assert.Equal(t, "HILTEST_DPS_GROUP_KEY", b.DPS.GroupKeyEnv)
	assert.Equal(t, "HILTEST_DPS_KEY", b.DPS.KeyEnv)
}

// Each testdata/bad-*.yaml starts with "# want: <error line>" comments.
func TestLoadBenchBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/bad-*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			var wants []string
			for _, l := range strings.Split(string(data), "\n") {
				if w, ok := strings.CutPrefix(l, "# want: "); ok {
					wants = append(wants, w)
				}
			}
			require.NotEmpty(t, wants)
			_, err = ParseBench(data, filepath.Base(f))
			require.Error(t, err)
			got := strings.Split(err.Error(), "\n")
			require.Len(t, got, len(wants), "errors:\n%s", err)
			for i, w := range wants {
				assert.True(t, strings.HasPrefix(got[i], w), "error %d:\n got %s\nwant %s", i, got[i], w)
			}
		})
	}
}

func TestParseBenchErrors(t *testing.T) {
	const head = "boards:\n  - name: b1\n    profile: sim\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"empty", "", "bench.yaml: empty bench file"},
		{"not yaml", "boards: [", "bench.yaml: yaml:"},
		{"no boards", "dps: {mode: mock}\n", "bench.yaml:1: bench: want a non-empty list of boards"},
		{"missing name", "boards:\n  - profile: sim\n    sim: {}\n", "bench.yaml:2: board 1: missing name"},
		{"bad name", "boards:\n  - name: 'a b'\n    profile: sim\n    sim: {}\n", "bench.yaml:2: board \"a b\": name: want"},
		{"missing profile", "boards:\n  - name: b1\n    port: /dev/x\n", "bench.yaml:2: board \"b1\": missing profile"},
		{"port and usb", head + "    port: /dev/x\n    usb: {vid: '10c4', pid: ea60}\n", "bench.yaml:2: board \"b1\": give only one of port, usb and sim"},
		{"bad vid", head + "    usb: {vid: silabs, pid: ea60}\n", "bench.yaml:4: board \"b1\": usb: vid: want 4 hex digits"},
		{"missing pid", head + "    usb: {vid: '10c4'}\n", "bench.yaml:4: board \"b1\": usb: pid: want 4 hex digits"},
		{"bad baud", head + "    port: /dev/x\n    baud: fast\n", "bench.yaml:5: board \"b1\": baud: want an integer"},
		{"labels not list", head + "    port: /dev/x\n    labels: a\n", "bench.yaml:5: board \"b1\": labels: want a list"},
		{"flash without port", head + "    port: /dev/x\n    flash: esptool.py {firmware}\n", "bench.yaml:5: board \"b1\": flash command must use {port}"},
		{"flash bad placeholder", head + "    port: /dev/x\n    flash: esptool.py -p {port} {fw}\n", "unknown placeholder"},
		{"sim unknown field", head + "    sim: {bugs: x}\n", "bench.yaml:4: board \"b1\": sim: unknown field \"bugs\""},
		{"dps mode", head + "    sim: {}\ndps: {mode: cloud}\n", "bench.yaml:5: dps: unknown mode \"cloud\""},
		{"dps delay", head + "    sim: {}\ndps: {assign_delay: 3}\n", "bench.yaml:5: dps: assign_delay: want a duration"},
		{"dps live scope", head + "    sim: {}\ndps: {mode: live, group_key_env: K}\n", "bench.yaml:5: dps: mode live needs id_scope"},
		{"dps live fields in mock", head + "    sim: {}\ndps: {id_scope: x}\n", "dps: id_scope applies to mode live only"},
		{"dps env name", head + "    sim: {}\ndps: {mode: live, id_scope: s, group_key_env: 'my key'}\n", "group_key_env: \"my key\" is not an environment variable name"},
		{"device key literal", head + "    sim: {}\ndps: {mode: live, id_scope: s, device_key_env: 'Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc='}\n", "looks like a key"},
		{"wifi unknown", head + "    sim: {}\nwifi: {ssid: home}\n", "bench.yaml:5: wifi: unknown field \"ssid\""},
		{"duplicate field", head + "    sim: {}\n    sim: {}\n", "bench.yaml:5: board \"b1\": field \"sim\" given twice"},
		{"rfc2217 without port", head + "    port: rfc2217://bench-pi\n", "bench.yaml:4: board \"b1\": port: want rfc2217://host:port[?ign_set_control]: "},
		{"rfc2217 with path", head + "    port: rfc2217://bench-pi:4000/ttyUSB0\n", "bench.yaml:4: board \"b1\": port: want rfc2217://host:port[?ign_set_control]: "},
		{"rfc2217 unknown option", head + "    port: rfc2217://bench-pi:4000?baud=9600\n", "unknown option \"baud\""},
		{"unknown bug", head + "    sim: {bug: group-key-not-derived}\n", "bench.yaml:4: board \"b1\": sim: unknown bug \"group-key-not-derived\" (known: body-id-mismatch, "},
		{"unknown bug in a list", head + "    sim:\n      bug: sr-not-encoded, nope\n", "bench.yaml:5: board \"b1\": sim: unknown bug \"nope\""},
		{"empty bug name", head + "    sim: {bug: 'sr-not-encoded,,missing-skn'}\n", "sim: bug: empty name in \"sr-not-encoded,,missing-skn\""},
		{"bug twice", head + "    sim: {bug: 'missing-skn,missing-skn'}\n", "sim: bug \"missing-skn\" given twice"},
		{"bad faults", head + "    sim: {faults: 'noise=0.1,warp=1'}\n", "bench.yaml:4: board \"b1\": sim: faults: fault spec \"noise=0.1,warp=1\": unknown fault \"warp\""},
		{"bug with agent", head + "    sim: {agent: hiltest-agent, bug: sr-not-encoded}\n", "sim: bug applies to the Go simulator only, not to the C agent"},
		{"dps listen not host:port", head + "    sim: {}\ndps: {listen: 8443}\n", "bench.yaml:5: dps: listen \"8443\": want host:port"},
		{"dps listen bad port", head + "    sim: {}\ndps:\n  listen: 0.0.0.0:99999\n", "bench.yaml:6: dps: listen \"0.0.0.0:99999\": port \"99999\": want 0-65535"},
		{"dps listen host name", head + "    sim: {}\ndps: {listen: 'bench.lan:8443'}\n", "dps: listen \"bench.lan:8443\": host \"bench.lan\": want an IP address"},
		{"dps listen empty", head + "    sim: {}\ndps: {listen: ''}\n", "dps: listen is empty"},
		{"dps host invalid", head + "    sim: {}\ndps: {listen: ':8443', host: 'my host'}\n", "bench.yaml:5: dps: host \"my host\": want a DNS name or an IP address"},
		{"dps host beyond loopback", head + "    sim: {}\ndps:\n  listen: 127.0.0.1:8443\n  host: 192.168.1.5\n", "bench.yaml:7: dps: host 192.168.1.5 cannot reach the mock: it listens on loopback only"},
		{"dps host beyond default listen", head + "    sim: {}\ndps: {host: 192.168.1.5}\n", "it listens on loopback only (listen 127.0.0.1:0)"},
		{"dps host not the listen address", head + "    sim: {}\ndps: {listen: '192.168.1.4:8443', host: 192.168.1.5}\n", "dps: host 192.168.1.5 is not the address the mock listens on"},
		{"dps san invalid", head + "    sim: {}\ndps:\n  san:\n    - ok.lan\n    - bad_name!\n", "bench.yaml:8: dps: san: \"bad_name!\": want a DNS name or an IP address"},
		{"dps san not a list", head + "    sim: {}\ndps: {san: x.lan}\n", "dps: san: want a list of strings"},
		{"dps listen in live", head + "    sim: {}\ndps: {mode: live, id_scope: s, group_key_env: K, listen: ':8443'}\n", "dps: listen applies to mode mock only"},
		{"unknown scheme", head + "    port: tcp://bench-pi:4000\n", "bench.yaml:4: board \"b1\": port \"tcp://bench-pi:4000\": unknown scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseBench([]byte(tt.yaml), "bench.yaml")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=", "key echoed in an error")
		})
	}
}

func TestParseBenchMockAddresses(t *testing.T) {
	const head = "boards:\n  - name: b1\n    profile: sim\n    sim: {bug: 'sr-not-encoded, missing-skn'}\n"
	tests := []struct {
		name, dps       string
		listen, host    string
		sans, certNames []string
	}{
		{"no dps section", "", "127.0.0.1:0", "127.0.0.1", nil, []string{"127.0.0.1"}},
		{"defaults", "dps: {mode: mock}\n", "127.0.0.1:0", "127.0.0.1", nil, []string{"127.0.0.1"}},
		{"all interfaces", "dps: {listen: '0.0.0.0:8443'}\n", "0.0.0.0:8443", "127.0.0.1", nil, []string{"127.0.0.1"}},
		{"all interfaces, no host part", "dps: {listen: ':8443'}\n", ":8443", "127.0.0.1", nil, []string{"127.0.0.1"}},
		{"all IPv6 interfaces", "dps: {listen: '[::]:8443'}\n", "[::]:8443", "127.0.0.1", nil, []string{"127.0.0.1"}},
		{"one interface", "dps: {listen: '192.168.1.4:8443'}\n", "192.168.1.4:8443", "192.168.1.4", nil, []string{"192.168.1.4"}},
		{"host and sans", "dps:\n  listen: 0.0.0.0:8443\n  host: bench.lan\n  san: [bench, 192.168.1.4, bench.lan]\n",
			"0.0.0.0:8443", "bench.lan", []string{"bench", "192.168.1.4", "bench.lan"}, []string{"bench.lan", "bench", "192.168.1.4"}},
		{"loopback name", "dps: {listen: 'localhost:0', host: localhost}\n", "localhost:0", "localhost", nil, []string{"localhost"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ParseBench([]byte(head+tt.dps), "bench.yaml")
			require.NoError(t, err)
			assert.Equal(t, "sr-not-encoded, missing-skn", b.Boards[0].Sim.Bug)
			assert.Equal(t, tt.listen, b.DPS.Listen)
			assert.Equal(t, tt.host, b.DPS.Host)
			assert.Equal(t, tt.sans, b.DPS.SANs)
			assert.Equal(t, tt.certNames, b.DPS.CertNames())
		})
	}
	// Built in code rather than parsed: the same defaults.
	d := BenchDPS{Mode: "mock"}
	assert.Equal(t, DefaultDPSListen, d.ListenAddr())
	assert.Equal(t, "127.0.0.1", d.ConnectHost())
}

// Every bug the simulator knows is accepted by name.
func TestParseBenchSimBugs(t *testing.T) {
	var names []string
	for _, b := range sim.Bugs() {
		names = append(names, b.Name)
	}
	require.NotEmpty(t, names)
	doc := "boards:\n  - name: b1\n    profile: sim\n    sim:\n      bug: " + strings.Join(names, ",") + "\n"
	b, err := ParseBench([]byte(doc), "bench.yaml")
	require.NoError(t, err)
	assert.Equal(t, strings.Join(names, ","), b.Boards[0].Sim.Bug)
}

func TestParseBenchRemotePort(t *testing.T) {
	tests := []string{"rfc2217://bench-pi.lan:4000", "rfc2217://192.0.2.7:2001?ign_set_control", "RFC2217://[::1]:4000"}
	for _, port := range tests {
		t.Run(port, func(t *testing.T) {
			b, err := ParseBench([]byte("boards:\n  - name: b1\n    profile: esp32-devkitc\n    port: "+yamlScalar(port)+"\n"), "bench.yaml")
			require.NoError(t, err)
			assert.Equal(t, port, b.Boards[0].Port)
		})
	}
}

func TestDialectsMatchReference(t *testing.T) {
	var want []string
	for _, d := range reference.Dialects() {
		want = append(want, string(d))
	}
	assert.Equal(t, want, Dialects())
}

func TestDraftBenchParses(t *testing.T) {
	draft := DraftBench([]BenchBoard{
		{Name: "esp32-devkitc-1", Profile: "esp32-devkitc", Port: "/dev/ttyUSB0", USB: &USBMatch{VID: "10c4", PID: "ea60", Serial: "0001"}},
		{Name: "port-2", Port: "/dev/ttyUSB1"},
		{Name: "sim-1", Profile: "sim", Port: "/tmp/sims/sim-1", Labels: []string{"a: b"}},
	})
	b, err := ParseBench(draft, "draft.yaml")
	require.NoError(t, err, "%s", draft)
	require.Len(t, b.Boards, 3)
	assert.Equal(t, "0001", b.Boards[0].USB.Serial)
	assert.Equal(t, "esp32-devkitc", b.Boards[1].Profile)
	assert.Equal(t, []string{"a: b"}, b.Boards[2].Labels)
	assert.Contains(t, string(draft), "# no built-in profile matches")
}

func TestLoadBenchRelativePaths(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "enr.yaml"), []byte("idScope: x\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "agent"), nil, 0o700))
	bench := filepath.Join(dir, "bench.yaml")
	write := func(s string) { require.NoError(t, os.WriteFile(bench, []byte(s), 0o600)) }

	write("boards:\n  - name: s\n    profile: sim\n    sim: {agent: ./agent}\ndps:\n  enrollments: enr.yaml\n")
	b, err := LoadBench(bench)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "enr.yaml"), b.DPS.Enrollments)
	assert.Equal(t, filepath.Join(dir, "agent"), b.Boards[0].Sim.Agent)

	write("boards:\n  - name: s\n    profile: sim\n    sim: {agent: ./nope}\ndps:\n  enrollments: missing.yaml\n")
	_, err = LoadBench(bench)
	require.Error(t, err)
	assert.Contains(t, err.Error(), bench+":6: dps: enrollments: stat "+filepath.Join(dir, "missing.yaml"))
	assert.Contains(t, err.Error(), bench+":2: board \"s\": sim: agent: stat "+filepath.Join(dir, "nope"))

	_, err = LoadBench(filepath.Join(dir, "absent.yaml"))
	assert.ErrorContains(t, err, "load bench: open ")
}
