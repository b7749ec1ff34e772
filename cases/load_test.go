package cases

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hiltest/hiltest/protocol"
)

const goodFile = `# a comment
defaults:
  id_scope: 0neFEEDC0DE
  key: Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=
cases:
  - id: my/derive
    kind: derive
    group_key: 8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==
    reg_id: sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6
    expect:
      device_key: Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=
  - id: my/sas-ttl
    title: Token from the clock
    kind: sas
    reg_id: dev-1
    ttl: 600
    optional: true
    timeout: 20s
  - id: my/request
    kind: request
    reg_id: dev-2
    expiry: 1893456000
    api_version: 2019-03-31
    requires: [blob]
`

func TestParseFileGood(t *testing.T) {
	cs, err := ParseFile("good.yaml", []byte(goodFile))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id       string
		title    string
		requires []string
		optional bool
	}{
		{"my/derive", `DERIVE for "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"`, []string{protocol.CapDerive}, false},
		{"my/sas-ttl", "Token from the clock", []string{protocol.CapSAS, protocol.CapTime}, true},
		{"my/request", `DPS.REQUEST for "dev-2" in scope 0neFEEDC0DE`, []string{protocol.CapDPSRequest, protocol.CapDPSConfig, protocol.CapBlob}, false},
	}
	if len(cs) != len(tests) {
		t.Fatalf("got %d cases, want %d", len(cs), len(tests))
	}
	for i, tt := range tests {
		c := cs[i]
		if c.ID != tt.id || c.Title != tt.title || !slices.Equal(c.Requires, tt.requires) || c.Optional != tt.optional || c.Run == nil {
			t.Errorf("case %d = {%q %q %v %v}, want {%q %q %v %v}", i, c.ID, c.Title, c.Requires, c.Optional, tt.id, tt.title, tt.requires, tt.optional)
		}
	}
	if cs[1].Timeout.Seconds() != 20 {
		t.Errorf("timeout = %v, want 20s", cs[1].Timeout)
	}
}

func TestParseFileBad(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // each must appear in the error
	}{
		{"unknown field", "cases:\n  - id: a\n    kind: derive\n    group_key: AAECAwQFBgcICQoLDA0ODw==\n    regid: x\n",
			[]string{`f.yaml:5: case "a": unknown field "regid" (did you mean "reg_id"?)`}},
		{"unknown top-level field", "case:\n  - id: a\n", []string{`f.yaml:1: the file: unknown field "case"`}},
		{"bad kind", "cases:\n  - id: a\n    kind: derve\n", []string{`f.yaml:2: case "a": unknown kind "derve"`}},
		{"no id", "cases:\n  - kind: derive\n    group_key: AAECAwQFBgcICQoLDA0ODw==\n    reg_id: x\n", []string{"f.yaml:2: case #1: no id"}},
		{"bad key", "cases:\n  - id: a\n    kind: derive\n    group_key: not*base64\n    reg_id: x\n",
			[]string{`f.yaml:4: case "a": group_key: key is not valid base64`}},
		{"bad reg id", "cases:\n  - id: a\n    kind: derive\n    group_key: AAECAwQFBgcICQoLDA0ODw==\n    reg_id: \"has space\"\n",
			[]string{`f.yaml:5: case "a": reg_id:`}},
		{"two errors", "cases:\n  - id: a\n    kind: sas\n    id_scope: 0ne1\n    reg_id: x\n    key: AAECAwQFBgcICQoLDA0ODw==\n    expiry: 1\n    ttl: 5\n  - id: b\n    kind: sas\n    bogus: 1\n",
			[]string{`f.yaml:8: case "a": give expiry or ttl, not both`, `f.yaml:11: case "b": unknown field "bogus"`}},
		{"expiry not a number", "cases:\n  - id: a\n    kind: sas\n    id_scope: s\n    reg_id: x\n    key: AAECAwQFBgcICQoLDA0ODw==\n    expiry: soon\n",
			[]string{`f.yaml:7: case "a": expiry "soon" is not a whole number`}},
		{"duplicate field", "cases:\n  - id: a\n    kind: derive\n    reg_id: x\n    reg_id: y\n", []string{`f.yaml:5: case "a": field "reg_id" given twice`}},
		{"unknown capability", "cases:\n  - id: a\n    kind: derive\n    group_key: AAECAwQFBgcICQoLDA0ODw==\n    reg_id: x\n    requires: [warp]\n",
			[]string{`f.yaml:6: case "a": unknown capability "warp"`}},
		{"unknown dialect", "cases:\n  - id: a\n    kind: derive\n    group_key: AAECAwQFBgcICQoLDA0ODw==\n    reg_id: x\n    dialects: [klingon]\n",
			[]string{`f.yaml:6: case "a": unknown dialect "klingon"`}},
		{"expect without dialect", "cases:\n  - id: a\n    kind: sas\n    id_scope: s1\n    reg_id: x\n    key: AAECAwQFBgcICQoLDA0ODw==\n    expiry: 5\n    expect:\n      token: x\n",
			[]string{`f.yaml:9: case "a": expect needs expect_dialect`}},
		{"expect field of another kind", "cases:\n  - id: a\n    kind: derive\n    group_key: AAECAwQFBgcICQoLDA0ODw==\n    reg_id: x\n    expect:\n      token: x\n",
			[]string{`f.yaml:7: case "a": expect: unknown field "token"`}},
		{"bad error code", "cases:\n  - id: a\n    kind: derive\n    expect_error: OOPS\n", []string{`f.yaml:4: case "a": expect_error "OOPS" is not a protocol error code`}},
		{"payload not an object", "cases:\n  - id: a\n    kind: request\n    id_scope: s1\n    reg_id: x\n    key: AAECAwQFBgcICQoLDA0ODw==\n    expiry: 5\n    payload: '[1]'\n",
			[]string{`f.yaml:8: case "a": payload must be a JSON object`}},
		{"expiry zero without accept_error", "cases:\n  - id: a\n    kind: sas\n    id_scope: s1\n    reg_id: x\n    key: AAECAwQFBgcICQoLDA0ODw==\n    expiry: 0\n",
			[]string{`f.yaml:7: case "a": expiry 0 needs accept_error`}},
		{"not a list", "cases: 5\n", []string{`f.yaml:1: "cases" must be a list`}},
		{"empty", "", []string{"f.yaml: empty case file"}},
		{"yaml syntax", "cases:\n  - id: [\n", []string{"f.yaml: "}},
		{"bad id", "cases:\n  - id: Has Space\n    kind: derive\n", []string{`f.yaml:2: case "Has Space": id must be lowercase`}},
		{"defaults unknown field", "defaults:\n  colour: red\ncases:\n  - id: a\n    kind: derive\n    group_key: AAECAwQFBgcICQoLDA0ODw==\n    reg_id: x\n",
			[]string{`f.yaml:2: defaults: unknown field "colour"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFile("f.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Errorf("error %T is not a *FileError", err)
			}
		})
	}
}

func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", goodFile)
	write("notes.txt", "not a case file")
	cs, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 3 {
		t.Fatalf("got %d cases, want 3", len(cs))
	}

	// The same id in a second file is an error naming both places.
	write("b.yml", "cases:\n  - id: my/derive\n    kind: derive\n    group_key: AAECAwQFBgcICQoLDA0ODw==\n    reg_id: x\n")
	_, err = Load(dir)
	want := filepath.Join(dir, "b.yml") + `:2: case "my/derive": id already used at ` + filepath.Join(dir, "a.yaml") + ":6"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v\nwant %q", err, want)
	}

	// A single file.
	if cs, err := Load(filepath.Join(dir, "a.yaml")); err != nil || len(cs) != 3 {
		t.Errorf("Load(file) = %d cases, %v; want 3 cases", len(cs), err)
	}

	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no case files") {
		t.Errorf("empty directory: error %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing directory: no error")
	}
}

func TestBuiltinCases(t *testing.T) {
	cs, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range cs {
		if seen[c.ID] {
			t.Errorf("id %s twice", c.ID)
		}
		seen[c.ID] = true
		if c.Title == "" || c.Run == nil {
			t.Errorf("%s: no title or no Run", c.ID)
		}
		for _, r := range c.Requires {
			if !slices.Contains(knownCaps, r) {
				t.Errorf("%s: requires unknown capability %q", c.ID, r)
			}
		}
	}
	// The edge cases the suite promises.
	for _, id := range []string{"derive/kat/docs", "derive/reg-id/longest", "derive/reg-id/punctuation",
		"sas/expiry/1", "sas/expiry/int32-max", "sas/expiry/uint32-overflow", "sas/expiry/year-9999", "sas/expiry/zero",
		"sas/keys/individual-primary", "sas/keys/individual-secondary", "request/api-version/2019-03-31",
		"proto/hello", "proto/error/unknown-verb", "proto/ping/max-frame", "proto/blob/ping-chunked", "proto/time/round-trip",
		"dps/register/group-primary", "dps/register/wrong-key", "dps/register/retry-after", "dps/register/disabled-individual"} {
		if !seen[id] {
			t.Errorf("built-in case %s missing", id)
		}
	}
}
