package yamlfile

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestErrorString(t *testing.T) {
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{"with line", Error{File: "f.yaml", Line: 7, Msg: "bad"}, "f.yaml:7: bad"},
		{"no line", Error{File: "f.yaml", Msg: "empty file"}, "f.yaml: empty file"},
		{"negative line", Error{File: "f.yaml", Line: -1, Msg: "x"}, "f.yaml: x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

// root parses src and returns its top node.
func root(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0]
}

func TestFields(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		known  []string
		fields map[string]string // key -> scalar value returned
		errs   []string
	}{
		{"known fields", "a: 1\nb: two\n", []string{"a", "b", "c"},
			map[string]string{"a": "1", "b": "two"}, nil},
		{"unknown field", "a: 1\nz: 2\n", []string{"a", "b"},
			map[string]string{"a": "1"}, []string{`f.yaml:2: top: unknown field "z" (known: a, b)`}},
		{"repeated field keeps the first", "a: 1\nb: 2\na: 3\n", []string{"a", "b"},
			map[string]string{"a": "1", "b": "2"}, []string{`f.yaml:3: top: field "a" given twice`}},
		{"not a mapping", "- a\n- b\n", []string{"a"},
			map[string]string{}, []string{"f.yaml:1: top: want a mapping"}},
		{"scalar", "hello\n", []string{"a"},
			map[string]string{}, []string{"f.yaml:1: top: want a mapping"}},
		{"unknown and repeated in file order", "x: 1\na: 1\na: 2\ny: 3\n", []string{"a"},
			map[string]string{"a": "1"}, []string{
				`f.yaml:1: top: unknown field "x" (known: a)`,
				`f.yaml:3: top: field "a" given twice`,
				`f.yaml:4: top: unknown field "y" (known: a)`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Collector{File: "f.yaml"}
			f := c.Fields(root(t, tt.src), "top", tt.known...)
			got := map[string]string{}
			for k, n := range f {
				got[k] = n.Value
			}
			if !reflect.DeepEqual(got, tt.fields) {
				t.Errorf("fields = %v, want %v", got, tt.fields)
			}
			if c.Len() != len(tt.errs) {
				t.Errorf("Len() = %d, want %d", c.Len(), len(tt.errs))
			}
			err := c.Err()
			if len(tt.errs) == 0 {
				if err != nil {
					t.Errorf("Err() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Err() = nil, want %q", tt.errs)
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tt.errs) {
				t.Errorf("Err() lines = %q, want %q", got, tt.errs)
			}
		})
	}
}

func TestCollectorOrder(t *testing.T) {
	n := root(t, "a: 1\nb: 2\n")
	tests := []struct {
		name   string
		record func(c *Collector)
		sort   bool
		want   []string
	}{
		{"none", func(c *Collector) {}, false, nil},
		{"order recorded", func(c *Collector) {
			c.Linef(5, "five")
			c.Errorf(n.Content[3], "node %s", n.Content[3].Value)
			c.Errorf(nil, "no node")
			c.Linef(1, "one")
		}, false, []string{"f.yaml:5: five", "f.yaml:2: node 2", "f.yaml: no node", "f.yaml:1: one"}},
		{"sorted by line, stable", func(c *Collector) {
			c.Linef(5, "five")
			c.Linef(2, "two a")
			c.Linef(0, "none")
			c.Linef(2, "two b")
		}, true, []string{"f.yaml: none", "f.yaml:2: two a", "f.yaml:2: two b", "f.yaml:5: five"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Collector{File: "f.yaml"}
			tt.record(c)
			if tt.sort {
				c.SortByLine()
			}
			err := c.Err()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Err() = %v, want nil", err)
				}
				return
			}
			joined, ok := err.(interface{ Unwrap() []error })
			if !ok {
				t.Fatalf("Err() = %T, not a joined error", err)
			}
			var got []string
			for _, e := range joined.Unwrap() {
				var ye *Error
				if !errors.As(e, &ye) {
					t.Errorf("%T is not a *Error", e)
				}
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestErrAs(t *testing.T) {
	c := Collector{File: "f.yaml"}
	c.Linef(3, "bad value %q", "x")
	var e *Error
	if !errors.As(c.Err(), &e) {
		t.Fatal("errors.As found no *Error")
	}
	if *e != (Error{File: "f.yaml", Line: 3, Msg: `bad value "x"`}) {
		t.Errorf("got %+v", *e)
	}
}
