// Package cases holds hiltest's built-in test cases: data-driven vectors
// (key derivation, SAS tokens, DPS request bytes) read from YAML case files,
// and Go cases for the wire protocol and for DPS registration end to end.
//
// Every case compares what a board produced with what the Go reference
// (package reference) computes for the same inputs, byte for byte, and when
// they differ reports the first divergent byte and names the likely cause
// by testing hypotheses against the board's bytes (signed with the group key,
// resource not URL-encoded, expiry from an unset clock, another SAS dialect,
// ...).
//
// Builtin returns every built-in case; Load reads case files from a
// directory. The case file format is described in data/README.md.
package cases
