package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// cliVectors reads the known-answer vectors kept with the reference package.
type cliVectors struct {
	Derive []struct {
		GroupKey       string `json:"group_key"`
		RegistrationID string `json:"registration_id"`
		DeviceKey      string `json:"device_key"`
	} `json:"derive"`
	SAS []struct {
		Dialect        string `json:"dialect"`
		IDScope        string `json:"id_scope"`
		RegistrationID string `json:"registration_id"`
		Resource       string `json:"resource"`
		Key            string `json:"key"`
		Expiry         int64  `json:"expiry"`
		KeyName        string `json:"key_name"`
		StringToSign   string `json:"string_to_sign"`
		Token          string `json:"token"`
	} `json:"sas"`
}

func loadCLIVectors(t *testing.T) cliVectors {
	t.Helper()
	data, err := os.ReadFile("../../reference/testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v cliVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Derive) == 0 || len(v.SAS) == 0 {
		t.Fatal("vectors missing")
	}
	return v
}

// cliCase is one CLI invocation and what it must produce.
type cliCase struct {
	name      string
	args      []string
	code      int
	stdout    string // exact, when wantOut is true
	wantOut   bool
	errHas    string // substring of stderr
	noStdout  bool   // stdout must be empty
	notInBoth []string
}

func runCLICases(t *testing.T, cases []cliCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tt.args, &out, &errb)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stdout %q stderr %q", code, tt.code, out.String(), errb.String())
			}
			if tt.wantOut && out.String() != tt.stdout {
				t.Errorf("stdout %q, want %q", out.String(), tt.stdout)
			}
			if tt.noStdout && out.Len() != 0 {
				t.Errorf("stdout %q, want nothing", out.String())
			}
			if !strings.Contains(errb.String(), tt.errHas) {
				t.Errorf("stderr %q, want it to contain %q", errb.String(), tt.errHas)
			}
			if tt.code == 2 {
				if n := strings.Count(errb.String(), "\n"); n != 1 {
					t.Errorf("usage error is %d lines, want 1: %q", n, errb.String())
				}
				if strings.Contains(errb.String(), "goroutine") {
					t.Errorf("stack trace on stderr: %s", errb.String())
				}
			}
			for _, s := range tt.notInBoth {
				if strings.Contains(out.String(), s) || strings.Contains(errb.String(), s) {
					t.Errorf("output leaks %q", s)
				}
			}
		})
	}
}

func TestDeriveCommand(t *testing.T) {
	v := loadCLIVectors(t).Derive[0]
	runCLICases(t, []cliCase{
		{name: "docs vector", args: []string{"derive", "--group-key", v.GroupKey, "--registration-id", v.RegistrationID},
			code: 0, wantOut: true, stdout: v.DeviceKey + "\n"},
		{name: "missing group key", args: []string{"derive", "--registration-id", "dev"}, code: 2, noStdout: true,
			errHas: "--group-key is required"},
		{name: "missing registration id", args: []string{"derive", "--group-key", v.GroupKey}, code: 2, noStdout: true,
			errHas: "--registration-id is required"},
		{name: "key not base64", args: []string{"derive", "--group-key", "abc$", "--registration-id", "dev"}, code: 2,
			noStdout: true, errHas: "not valid base64: character '$' at position 4"},
		{name: "empty key", args: []string{"derive", "--group-key", "", "--registration-id", "dev"}, code: 2,
			noStdout: true, errHas: "empty"},
		{name: "bad registration id", args: []string{"derive", "--group-key", v.GroupKey, "--registration-id", "dev 1"},
			code: 2, noStdout: true, errHas: "' ' at position 4"},
		{name: "registration id ends in dot", args: []string{"derive", "--group-key", v.GroupKey, "--registration-id", "dev."},
			code: 2, noStdout: true, errHas: "last character"},
		{name: "unknown flag", args: []string{"derive", "--groupkey", v.GroupKey}, code: 2, noStdout: true, errHas: "unknown flag"},
		{name: "stray argument", args: []string{"derive", "x"}, code: 2, noStdout: true, errHas: "unknown command"},
	})
}
