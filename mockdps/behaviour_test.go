package mockdps

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestBehaviourDocNamesExist checks that every test BEHAVIOUR.md cites
// exists, here or in cmd/hiltest.
func TestBehaviourDocNamesExist(t *testing.T) {
	doc, err := os.ReadFile("BEHAVIOUR.md")
	if err != nil {
		t.Fatal(err)
	}
	var src strings.Builder
	for _, pattern := range []string{"*_test.go", filepath.Join("..", "cmd", "hiltest", "dps_test.go")} {
		files, _ := filepath.Glob(pattern)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			src.Write(b)
		}
	}
	names := regexp.MustCompile(`\b(?:Test|Fuzz|Benchmark|Example)[A-Z]\w*`).FindAllString(string(doc), -1)
	if len(names) < 20 {
		t.Fatalf("only %d test names found in BEHAVIOUR.md", len(names))
	}
	for _, n := range names {
		if !regexp.MustCompile(`func ` + n + `\(`).MatchString(src.String()) {
			t.Errorf("BEHAVIOUR.md cites %s, which does not exist", n)
		}
	}
	// Subtest names cited for TestAuthDiagnoses exist in its table.
	for _, sub := range []string{"missing authorization", "malformed token", "no prefix", "wrong skn", "sr not encoded",
		"sr not valid percent-encoding", "signed %2F sent %2f", "signed the decoded resource", "clock not set", "expired",
		"expiry too far", "sig not encoded", "group key used", "derived key not decoded", "individual key not decoded",
		"wrong key individual", "wrong key group"} {
		if !strings.Contains(src.String(), `name: "`+sub) && !strings.Contains(src.String(), `{name: "`+sub) {
			t.Errorf("subtest %q not found", sub)
		}
	}
}
