#!/usr/bin/env python3
"""PING round trips per second with pyserial: the usual write + readline loop.

This is the comparison point for "hiltest bench": the way a Python HIL
script (pytest-embedded style) talks to a board, one request written with
Serial.write and the answer read with Serial.readline, frames built and
checked as in protocol/PROTOCOL.md (CRC-32/IEEE over the frame up to and
including the space before "*").

Usage: pyserial_ping.py PORT [COUNT] [PAYLOAD]
Prints one JSON line: {"count": N, "seconds": S, "rate": N/S}.
"""
import json
import sys
import time
import zlib

import serial  # pyserial


def encode_value(data: bytes) -> bytes:
    out = bytearray()
    for c in data:
        if 0x21 <= c <= 0x7E and c != 0x25:
            out.append(c)
        else:
            out += b"%%%02X" % c
    return bytes(out)


def frame(seq: int, verb: str, payload: bytes) -> bytes:
    body = b"@@HIL REQ %d %s data=%s " % (seq, verb.encode(), encode_value(payload))
    return body + b"*%08X\n" % (zlib.crc32(body) & 0xFFFFFFFF)


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    port = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    payload = sys.argv[3].encode() if len(sys.argv) > 3 else b"hello"
    ser = serial.Serial(port, 115200, timeout=2)
    want = encode_value(payload)
    start = time.perf_counter()
    seq = 0
    for _ in range(count):
        seq = seq % 65535 + 1
        ser.write(frame(seq, "PING", payload))
        while True:
            line = ser.readline()
            if not line:
                print("timeout waiting for PING %d" % seq, file=sys.stderr)
                return 1
            i = line.find(b"@@HIL ")
            if i < 0:
                continue
            f = line[i:].rstrip(b"\r\n")
            star = f.rfind(b" *")
            if star < 0 or b"%08X" % (zlib.crc32(f[: star + 1]) & 0xFFFFFFFF) != f[star + 2:]:
                continue
            parts = f[:star].split(b" ")
            if len(parts) < 4 or parts[1] not in (b"OK", b"ERR") or int(parts[2]) != seq:
                continue
            if parts[1] != b"OK" or b"data=" + want not in parts[4:]:
                print("bad answer to PING %d: %r" % (seq, f), file=sys.stderr)
                return 1
            break
    secs = time.perf_counter() - start
    ser.close()
    print(json.dumps({"count": count, "seconds": secs, "rate": count / secs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
