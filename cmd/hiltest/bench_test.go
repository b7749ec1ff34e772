package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBenchSmoke runs every measurement small, to check they run and
// report; the figures themselves are for "hiltest bench" on a quiet machine.
func TestBenchSmoke(t *testing.T) {
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "figures.json")
	var out, errb bytes.Buffer
	code := run([]string{"bench", "--pings", "50", "--boards", "2", "--baud", "921600", "--only", "proto/ping,derive/kat",
		"--sim-process=false", "--ping-sim-inline", "--pyserial-script", filepath.Join("..", "..", "bench", "pyserial_ping.py"), "--json", jsonPath}, &out, &errb)
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", out.String(), errb.String())
	for _, s := range []string{"PING/s via harness session", "PING/s via bare go.bug.st/serial loop", "bytes-on-wire lower bound", "2 boards / 1 board", "peak RSS"} {
		assert.Contains(t, out.String(), s)
	}
	data, err := os.ReadFile(jsonPath)
	require.NoError(t, err)
	var fig benchFigures
	require.NoError(t, json.Unmarshal(data, &fig))
	assert.Greater(t, fig.SessionPingRate, 0.0)
	assert.Greater(t, fig.BarePingRate, 0.0)
	assert.NotEmpty(t, fig.Pyserial, "pyserial is measured or said unavailable")
	assert.Greater(t, fig.WireFromBoard, int64(0))
	assert.Greater(t, fig.WireToBoard, int64(0))
	assert.Greater(t, fig.ManyPeakRSS, int64(0))
	require.Greater(t, fig.SuiteCases, 0)
	assert.Equal(t, fmt.Sprintf("%d pass, 0 fail, 0 error, 0 skip", 2*fig.SuiteCases), fig.ManyResults)
}

func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--pings", "0"},
		{"bench", "--skip", "nothing"},
		{"bench", "--only", "no-such-case", "--skip", "ping"},
	} {
		var out, errb bytes.Buffer
		assert.Equal(t, 2, run(args, &out, &errb), "%v: %s", args, errb.String())
	}
}
