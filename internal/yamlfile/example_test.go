package yamlfile_test

import (
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/hiltest/hiltest/internal/yamlfile"
)

func Example() {
	src := "name: b1\ncolour: red\nname: b2\nport: [1, 2]\n"
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		panic(err)
	}
	c := yamlfile.Collector{File: "bench.yaml"}
	f := c.Fields(doc.Content[0], "board", "name", "port")
	if n := f["port"]; n.Kind != yaml.ScalarNode {
		c.Errorf(n, "board: port: want a string")
	}
	fmt.Println("name:", f["name"].Value)
	fmt.Println(c.Err())
	// Output:
	// name: b1
	// bench.yaml:2: board: unknown field "colour" (known: name, port)
	// bench.yaml:3: board: field "name" given twice
	// bench.yaml:4: board: port: want a string
}
