package cases

import (
	"fmt"

	"github.com/hiltest/hiltest/harness"
)

// Builtin returns every built-in case: the vectors of the embedded case
// files (data/*.yaml) followed by the Go cases (protocol conformance and
// DPS end to end), in a stable order.
func Builtin() ([]harness.Case, error) {
	vs, err := builtinVectors()
	if err != nil {
		return nil, err
	}
	all := append(protocolCases(), vs...)
	all = append(all, dpsCases()...)
	seen := map[string]bool{}
	for _, c := range all {
		if seen[c.ID] {
			return nil, fmt.Errorf("built-in cases: id %q used twice", c.ID)
		}
		seen[c.ID] = true
	}
	return all, nil
}
