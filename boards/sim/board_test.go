package sim

import (
	"testing"

	"github.com/hiltest/hiltest/protocol"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestBootAndHandshake(t *testing.T) {
	b, c := boot(t, Config{Name: "sim-1", Seed: 1, Dialect: "azure-iot-sdk-c"})
	logs := c.allLogs()
	for _, want := range []string{
		"ets Jun  8 2016 00:22:57",
		"rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)",
		"configsip: 0, SPIWP:0xee",
		"entry 0x400805e4",
		"boot: ESP-IDF v5.2.1 2nd stage bootloader",
		"cpu_start: Pro cpu start user code",
	} {
		mustContain(t, logs, want)
	}
	ready := c.events[len(c.events)-1]
	if ready.String("reason") != "poweron" || ready.String("proto") != "1" || ready.Seq != 0 {
		t.Errorf("READY = %s", ready.Redacted())
	}
	h := c.hello()
	want := map[string]string{
		"proto": "1", "fw": "hiltest-sim", "fw_version": "1.0.0", "board": "sim-esp32", "chip": "ESP32",
		"mac": b.MAC(), "max": "4096", "blob_max": "65536", "dialect": "azure-iot-sdk-c",
		"caps": "ping,reset,time,derive,sas,dps.request,dps.register,tls.ca,net.wifi,dps.config,blob",
	}
	for k, v := range want {
		if got := h.String(k); got != v {
			t.Errorf("HELLO %s = %q, want %q", k, got, v)
		}
	}
	p := c.ok(protocol.VerbPing, protocol.Bytes("data", []byte{0, 1, 0xff, ' ', '%'}))
	if got := p.String("data"); got != "\x00\x01\xff %" {
		t.Errorf("PING data = %q", got)
	}
}
