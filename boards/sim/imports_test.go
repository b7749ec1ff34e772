package sim

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// The simulator is a device under test: it must not share code with the
// reference it is compared against.
func TestDoesNotImportReference(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			if strings.Contains(imp.Path.Value, "hiltest/reference") || strings.Contains(imp.Path.Value, "hiltest/mockdps") {
				t.Errorf("%s imports %s", f, imp.Path.Value)
			}
		}
	}
}
