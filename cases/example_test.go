package cases_test

import (
	"fmt"
	"strings"

	"github.com/hiltest/hiltest/cases"
)

func ExampleParseFile() {
	file := `
defaults:
  id_scope: 0neFEEDC0DE
  key: Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=
cases:
  - id: my/sas/expiry-1
    kind: sas
    reg_id: dev-1
    expiry: 1
  - id: my/sas/ttl
    kind: sas
    reg_id: dev-1
    ttl: 3600
`
	cs, err := cases.ParseFile("my.yaml", []byte(file))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range cs {
		fmt.Println(c.ID, c.Requires)
	}
	// Output:
	// my/sas/expiry-1 [sas]
	// my/sas/ttl [sas time]
}

func ExampleParseFile_errors() {
	file := `
cases:
  - id: my/derive
    kind: derive
    group_key: not-base64!
    regid: dev-1
`
	_, err := cases.ParseFile("my.yaml", []byte(file))
	fmt.Println(err)
	// Output:
	// my.yaml:6: case "my/derive": unknown field "regid" (did you mean "reg_id"?)
}

func ExampleBuiltin() {
	cs, err := cases.Builtin()
	if err != nil {
		fmt.Println(err)
		return
	}
	groups := map[string]int{}
	for _, c := range cs {
		groups[strings.SplitN(c.ID, "/", 2)[0]]++
	}
	fmt.Println(groups["proto"] > 0, groups["derive"] > 0, groups["sas"] > 0, groups["request"] > 0, groups["dps"] > 0)
	// Output: true true true true true
}
