package junitcheck

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const valid = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="hiltest" tests="3" failures="1" errors="0" skipped="1" time="1.5">
  <testsuite name="sim-1" tests="3" failures="1" errors="0" skipped="1" time="1.5">
    <testcase name="a" classname="sim-1" time="0.5"></testcase>
    <testcase name="b" classname="sim-1" time="0.5"><failure message="differs at byte 3">body</failure></testcase>
    <testcase name="c" classname="sim-1" time="0.5"><skipped message="no capability"></skipped></testcase>
  </testsuite>
</testsuites>`

func TestCheckValid(t *testing.T) {
	d, err := Check([]byte(valid))
	require.NoError(t, err)
	require.Len(t, d.Suites, 1)
	require.Len(t, d.Suites[0].Cases, 3)
	assert.Equal(t, "differs at byte 3", *d.Suites[0].Cases[1].Failure.Message)
	assert.Equal(t, "body", d.Suites[0].Cases[1].Failure.Body)
}

func TestCheckFaults(t *testing.T) {
	tests := []struct {
		name, old, new, want string
	}{
		{"not XML", `<?xml`, `<<`, "junit: "},
		{"root name", `<testsuites name="hiltest" `, `<testsuites `, "testsuites: no name attribute"},
		{"suite time", `skipped="1" time="1.5">
    <testcase name="a"`, `skipped="1">
    <testcase name="a"`, "testsuite 1: no time attribute"},
		{"case classname", `name="a" classname="sim-1"`, `name="a"`, `testsuite "sim-1" testcase 1 (a): no classname attribute`},
		{"case time", `classname="sim-1" time="0.5"></testcase>`, `classname="sim-1"></testcase>`, "testcase 1 (a): no time attribute"},
		{"failure message", `<failure message="differs at byte 3">`, `<failure>`, "testcase 2 (b): failure without a message"},
		{"suite count", `<testsuite name="sim-1" tests="3"`, `<testsuite name="sim-1" tests="4"`, `testsuite "sim-1": tests=4, but 3 found`},
		{"root count", `hiltest" tests="3" failures="1"`, `hiltest" tests="3" failures="2"`, "testsuites: failures=2, but 1 found"},
		{"skipped count", `time="1.5">
  <testsuite name="sim-1" tests="3" failures="1" errors="0" skipped="1"`, `time="1.5">
  <testsuite name="sim-1" tests="3" failures="1" errors="0" skipped="0"`, `testsuite "sim-1": skipped=0, but 1 found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := replaceOnce(t, valid, tt.old, tt.new)
			_, err := Check([]byte(doc))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	i := strings.Index(s, old)
	require.GreaterOrEqual(t, i, 0, "%q not in the document", old)
	return s[:i] + new + s[i+len(old):]
}
