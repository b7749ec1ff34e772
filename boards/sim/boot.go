package sim

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// The boot output follows what an ESP32 (ESP-IDF v5.2) prints on UART0 at
// 115200 baud: the mask ROM's banner (the ROM itself runs at 74880 baud from a
// 40 MHz crystal, so a host at 115200 may see garbage first), the
// second-stage bootloader's log and the application's startup log.

// romNoise is what the ROM's 74880-baud output looks like to a receiver at 115200.
func romNoise(rng *rand.Rand) []byte {
	n := 16 + rng.IntN(96)
	b := make([]byte, n)
	const pool = "\x00\x80\xe0\xf8\xfe\xff\x18\x1c\x8c\x9e\xc0\xfc\x07\x0f\xa0~x"
	for i := range b {
		b[i] = pool[rng.IntN(len(pool))]
	}
	return b
}

// junk is garbage a host may see between frames: line noise without a line
// end, so that the next frame follows it on the same line.
func junk(rng *rand.Rand) []byte {
	switch rng.IntN(3) {
	case 0:
		return romNoise(rng)
	case 1:
		return []byte("\x1b[0;33mW (" + itoa(rng.IntN(99999)) + ") wifi: bcn_timeout,ap_probe_send_start\x1b[0m")
	default:
		b := make([]byte, 1+rng.IntN(40))
		for i := range b {
			b[i] = byte(0x20 + rng.IntN(0x5f))
		}
		return b
	}
}

func romBanner(reason string, download bool) []byte {
	rst := "rst:0x1 (POWERON_RESET)"
	switch reason {
	case "sw":
		rst = "rst:0xc (SW_CPU_RESET)"
	case "brownout":
		rst = "rst:0xf (BROWNOUT_RST)"
	case "watchdog":
		rst = "rst:0x10 (RTCWDT_RTC_RESET)"
	}
	var b strings.Builder
	b.WriteString("ets Jun  8 2016 00:22:57\r\n\r\n")
	if download {
		b.WriteString(rst + ",boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\n")
		b.WriteString("waiting for download\r\n")
		return []byte(b.String())
	}
	b.WriteString(rst + ",boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n")
	b.WriteString("configsip: 0, SPIWP:0xee\r\n")
	b.WriteString("clk_drv:0x00,q_drv:0x00,d_drv:0x00,cs0_drv:0x00,hd_drv:0x00,wp_drv:0x00\r\n")
	b.WriteString("mode:DIO, clock div:2\r\n")
	b.WriteString("load:0x3fff0030,len:7112\r\n")
	b.WriteString("load:0x40078000,len:15624\r\n")
	b.WriteString("load:0x40080400,len:4\r\n")
	b.WriteString("ho 8 tail 4 room 4\r\n")
	b.WriteString("load:0x40080404,len:3876\r\n")
	b.WriteString("entry 0x400805e4\r\n")
	return []byte(b.String())
}

// bootLog is the second-stage bootloader's and the application's startup
// log; optional lines are left out at random, timestamps grow at random.
func bootLog(rng *rand.Rand, cfg Config, s *session) []byte {
	var b strings.Builder
	ms := 27 + rng.IntN(4)
	line := func(tag, msg string) {
		fmt.Fprintf(&b, "I (%d) %s: %s\r\n", ms, tag, msg)
		ms += rng.IntN(8)
	}
	maybe := func(tag, msg string) {
		if rng.IntN(3) > 0 {
			line(tag, msg)
		}
	}
	line("boot", "ESP-IDF v5.2.1 2nd stage bootloader")
	line("boot", "compile time Mar 14 2024 10:12:31")
	maybe("boot", "Multicore bootloader")
	line("boot", "chip revision: v3.0")
	maybe("boot.esp32", "SPI Speed      : 40MHz")
	maybe("boot.esp32", "SPI Mode       : DIO")
	maybe("boot.esp32", "SPI Flash Size : 4MB")
	line("boot", "Enabling RNG early entropy source...")
	line("boot", "Partition Table:")
	line("boot", "## Label            Usage          Type ST Offset   Length")
	line("boot", " 0 nvs              WiFi data        01 02 00009000 00006000")
	line("boot", " 1 phy_init         RF data          01 01 0000f000 00001000")
	line("boot", " 2 factory          factory app      00 00 00010000 00100000")
	line("boot", "End of partition table")
	segs := 3 + rng.IntN(3)
	addr := 0x10020
	for i := 0; i < segs; i++ {
		size := 0x400 + rng.IntN(0x20000)
		line("esp_image", fmt.Sprintf("segment %d: paddr=%08x vaddr=%08x size=%05xh (%6d) %s", i, addr, 0x3f400020+addr, size, size, []string{"map", "load"}[i%2]))
		addr += size + 0x20
	}
	ms += 60 + rng.IntN(40)
	line("boot", "Loaded app from partition at offset 0x10000")
	line("boot", "Disabling RNG early entropy source...")
	maybe("cpu_start", "Multicore app")
	line("cpu_start", "Pro cpu start user code")
	line("cpu_start", "cpu freq: 160000000 Hz")
	maybe("cpu_start", "Application information:")
	line("cpu_start", "Project name:     "+cfg.Firmware)
	line("cpu_start", "App version:      "+cfg.FirmwareVersion)
	maybe("cpu_start", "Compile time:     Mar 14 2024 10:14:02")
	maybe("cpu_start", "ELF file SHA256:  3c5a7e0d9b41f2e8...")
	line("cpu_start", "ESP-IDF:          v5.2.1")
	maybe("cpu_start", "Min chip rev:     v0.0")
	maybe("heap_init", "Initializing. RAM available for dynamic allocation:")
	maybe("heap_init", "At 3FFAE6E0 len 00001920 (6 KiB): DRAM")
	maybe("heap_init", "At 3FFB2A10 len 0002D5F0 (181 KiB): DRAM")
	line("spi_flash", "detected chip: generic")
	line("spi_flash", "flash io: dio")
	ms += 10 + rng.IntN(20)
	line("main_task", "Started on CPU0")
	line("main_task", "Calling app_main()")
	line("hil", fmt.Sprintf("%s %s on %s, mac %s, SAS dialect %s", cfg.Firmware, cfg.FirmwareVersion, cfg.BoardName, cfg.MAC, cfg.Dialect))
	s.bootMS = ms
	return []byte(b.String())
}
