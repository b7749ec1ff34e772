// Package mockdps is a mock Azure IoT Device Provisioning Service (DPS) for
// symmetric-key attestation over HTTPS: a real TLS server on loopback (or the
// bench LAN) that registers devices from an enrollments file, verifies SAS
// tokens the way the service evidently does, and explains every rejection.
//
// Start one in a test with [NewTestServer] (or [Start] and [Server.Close]).
// Every request is captured exactly as it arrived on the wire
// ([Server.Requests]) and every rejected request gets a [Diagnosis] naming the
// cause (signed with the group key, sr encoded differently from the string
// that was signed, token expired, ...), while the public response stays as
// terse as the real service's ("401002 Unauthorized").
//
// BEHAVIOUR.md in this directory lists each DPS behaviour the mock reproduces,
// its public source, and the test that covers it.
package mockdps
