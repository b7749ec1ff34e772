// Package esp32 holds the hiltest firmware agent for ESP32 boards: an ESP-IDF
// project whose protocol logic lives in a portable C core
// (components/hiltest_agent/core), and a host build of that core
// (host/, the hiltest-agent binary) that serves as a second virtual board.
//
// This Go package has no API: it only tests the host build, building it with
// make, driving it over a real pty with go.bug.st/serial and comparing its
// answers with package reference and a mock DPS.
package esp32
