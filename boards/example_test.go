package boards_test

import (
	"fmt"
	"log"

	"github.com/hiltest/hiltest/boards"
)

func ExampleMatchUSB() {
	p, ok := boards.MatchUSB("10C4", "EA60")
	fmt.Println(ok, p.Name, p.Reset, p.Baud)
	p, _ = boards.MatchUSB("303a", "1001")
	fmt.Println(p.Name, p.Reset, p.Reenumerates)
	// Output:
	// true esp32-devkitc classic 115200
	// usb-serial-jtag usb-jtag true
}

func ExampleParseBench() {
	b, err := boards.ParseBench([]byte(`
boards:
  - name: devkit-1
    profile: esp32-devkitc
    usb: {vid: "10c4", pid: "ea60", serial: "0001"}
    dialect: azure-iot-sdk-c
  - name: sim-1
    profile: sim
    sim: {bug: sr-not-encoded, seed: 1}
dps:
  mode: live
  id_scope: 0ne00ABCDEF
  group_key_env: HILTEST_DPS_GROUP_KEY
`), "bench.yaml")
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range b.Boards {
		fmt.Println(d.Line, d.Name, d.Profile, d.USB != nil, d.Sim != nil)
	}
	fmt.Println(b.DPS.Mode, b.DPS.IDScope, b.DPS.GroupKeyEnv)

	_, err = boards.ParseBench([]byte("boards:\n  - name: b1\n    profile: x\n    port: /dev/ttyUSB0\n"), "bench.yaml")
	fmt.Println(err)
	// Output:
	// 3 devkit-1 esp32-devkitc true false
	// 7 sim-1 sim false true
	// live 0ne00ABCDEF HILTEST_DPS_GROUP_KEY
	// bench.yaml:3: board "b1": unknown profile "x" (known: esp32-devkitc, ch340, ch9102, ftdi, usb-serial-jtag, sim)
}

// A mock DPS that real boards on the bench LAN reach: it listens on all
// interfaces, boards connect to the bench host by name, and its certificate
// covers that name and the extra SANs.
func ExampleBenchDPS_CertNames() {
	b, err := boards.ParseBench([]byte(`
boards:
  - name: devkit-1
    profile: esp32-devkitc
    port: rfc2217://bench-pi.lan:4000
dps:
  mode: mock
  listen: 0.0.0.0:8443
  host: hiltest-host.lan
  san: [hiltest-host, 192.168.1.20]
`), "bench.yaml")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(b.DPS.Listen, b.DPS.Host, b.DPS.CertNames())

	d := boards.BenchDPS{Mode: "mock"} // built in code: defaults apply
	fmt.Println(d.ListenAddr(), d.ConnectHost())
	// Output:
	// 0.0.0.0:8443 hiltest-host.lan [hiltest-host.lan hiltest-host 192.168.1.20]
	// 127.0.0.1:0 127.0.0.1
}
