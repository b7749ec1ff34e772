// Package reference is the Go reference implementation of what a device does
// to provision into Azure IoT DPS with a symmetric key over HTTPS: derive a
// device key from a group key, build a SAS token in each SDK "dialect", build
// the DPS requests byte for byte, and talk to DPS (or the mock DPS) as a
// client. It also checks tokens produced elsewhere and compares request bytes,
// reporting the first byte where they diverge.
//
// Sources for every rule are cited next to the code that implements it.
package reference
