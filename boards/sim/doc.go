// Package sim simulates ESP32 boards running the hiltest agent firmware, each
// on its own pseudo-terminal, so that the harness can be run and tested with
// no hardware: the harness opens the board's port with go.bug.st/serial
// exactly as it opens /dev/ttyUSB0.
//
// A Board speaks protocol v1 (protocol/PROTOCOL.md) on the master side of a
// pty and exposes the slave side as /dev/pts/N and through a stable symlink
// <LinkDir>/<Name>. It is an implementation independent of the Go reference
// (it must not import reference/): it derives keys, signs SAS tokens with its
// own URL encoders for the three dialects, builds the exact DPS request bytes
// and really calls a DPS (mock or live) over TLS with the trust anchor and
// endpoint given over the protocol. Boards can be built with seeded firmware
// bugs (Bugs) and with faults injected deterministically from a seed
// (ParseFaults): line noise, corrupted and dropped bytes, brown-outs, hangs,
// slow answers, over-long log lines, the port disappearing, clock skew.
//
// # Boot
//
// On start and after every reset a board prints what an ESP32 prints: the
// ROM banner ("ets Jun  8 2016 00:22:57", "rst:0x1 (POWERON_RESET),boot:0x13
// (SPI_FAST_FLASH_BOOT)", ..., "entry 0x400805e4"), the ESP-IDF second-stage
// bootloader and application start-up log (a seeded random selection of
// lines), then the READY event. Its clock starts near 0 (1970), as on a board
// without SNTP, until TIME.SET.
//
// # Reset lines: the control socket
//
// A pty has no modem control lines: TIOCMGET/TIOCMSET fail with ENOTTY, so
// go.bug.st/serial's SetDTR and SetRTS return an error on it. In their place
// each board listens on a unix socket, <LinkDir>/<Name>.ctl (ControlPath),
// and reads one command per line, answering each with one line "ok ..." or
// "error ...":
//
//	rts 1 | rts 0     assert / release RTS
//	dtr 1 | dtr 0     assert / release DTR
//	dtr 0 rts 1       both lines in one step (esptool's UnixTightReset sets both in one TIOCMSET)
//	reset             pulse EN (a plain hard reset)
//	unplug [DURATION] make the port disappear (see below)
//	state             report rts, dtr, EN, IO0 and the board state
//
// The simulator applies the devkit auto-reset circuit esptool relies on
// (two transistors: RTS drives EN, DTR drives IO0; both asserted together, or
// both released, leave EN and IO0 high). While EN is low the board is held in
// reset and silent. EN rises through an RC delay (ENDelay, 10 ms): only when
// EN has stayed released that long does the chip boot, sampling IO0 at that
// moment: low means the ROM download mode ("waiting for download", no READY),
// high a normal boot with READY reason=hw. The delay is what lets esptool's
// ClassicReset pass through its transient (DTR, RTS) = (1, 1) step without
// booting, as on a devkit. So esptool's ClassicReset, UnixTightReset and
// HardReset sequences, sent over the socket, do what they do on a devkit.
//
// What a real board does differently: the modem lines are driven by the USB
// bridge with its own latency, EN's rise and IO0's sampling depend on the
// actual RC values, and esptool's sleeps (100 ms, 50 ms) are there to cover
// them; the simulator has one fixed delay and acts on each command as it
// arrives. Boards with a USB-Serial-JTAG (ESP32-C3/S3) have no such circuit
// and re-enumerate on reset; the simulator models the classic bridge only. Opening a real port with go.bug.st/serial asserts DTR and
// RTS briefly (Linux cannot set them before open), which on some adapters
// resets the board; opening a pty does nothing. A RESET request (protocol)
// works the same on both: OK, then reboot with READY reason=sw.
//
// # Port loss: unplugging
//
// The unplug fault (or the "unplug" control command) emulates a USB cable
// pulled out and put back: the simulator closes the pty master and slave
// (a host blocked in Read gets go.bug.st/serial's PortClosed error, as when a
// USB-serial device vanishes), removes the symlink, waits, then creates a new
// pty (usually with another /dev/pts number), points the symlink at it and
// boots the board with READY reason=poweron. A host that reopens the port by
// the symlink finds the board again, as it would by /dev/serial/by-id. On a
// real machine the kernel also removes and recreates /dev/ttyUSBn (possibly
// with another number), udev recreates the by-id link, and re-enumeration
// takes from a few hundred milliseconds to seconds; the board is powered down
// while unplugged unless it has another supply.
//
// # Line speed
//
// With Config.Baud set, the board's output is paced at Baud/10 bytes per
// second (8N1), so a suite takes about as long as on a real UART; the host's
// baud setting on the pty is ignored. The firmware's writes are queued and
// a transmitter sends them at that rate, so the control socket is answered
// at once however much output is waiting. Holding EN low (or pulling the
// cable) drops the output still queued, as a chip reset loses its UART FIFO;
// a software restart (RESET) lets it go out first. When nobody reads the
// port, output that would block is discarded, as a UART's bytes are lost.
package sim
