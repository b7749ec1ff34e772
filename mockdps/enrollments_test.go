package mockdps

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadEnrollmentsExample(t *testing.T) {
	got, err := LoadEnrollments(filepath.Join("testdata", "enrollments.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := DemoEnrollments()
	// Lines come from the file; payload JSON is re-encoded with sorted keys.
	for i := range got.Individual {
		if got.Individual[i].Line == 0 {
			t.Errorf("individual %d: no line", i)
		}
		got.Individual[i].Line = 0
	}
	for i := range got.Groups {
		got.Groups[i].Line = 0
	}
	var a, b any
	_ = json.Unmarshal(got.Individual[1].Payload, &a)
	_ = json.Unmarshal(want.Individual[1].Payload, &b)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("payload %s, want %s", got.Individual[1].Payload, want.Individual[1].Payload)
	}
	got.Individual[1].Payload, want.Individual[1].Payload = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("testdata/enrollments.yaml differs from DemoEnrollments():\n%+v\n%+v", got, want)
	}
	if err := DemoEnrollments().Validate(); err != nil {
		t.Errorf("DemoEnrollments invalid: %v", err)
	}
}

func TestParseEnrollmentsErrors(t *testing.T) {
	const key = "q9+Nuw6LinAPOnExjvpUKaecInDPxI7FWmDlw67a3s8zCl8WCNxxPPW0zwReB0aoRbc8b+ASzbHtGHWVT/vtqg=="
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"group key not base64", `idScope: 0ne00000A0A
groups:
  - name: g1
    primaryKey: "not*base64"
    hubs: [h1.azure-devices.net]
`, []string{`enrollments.yaml:4: group "g1": primary key is not base64`}},
		{"short key", `idScope: 0ne00000A0A
individual:
  - registrationId: d1
    primaryKey: c2hvcnQ=
    assignedHub: h
`, []string{`enrollments.yaml:4: individual "d1": primary key decodes to 5 bytes, DPS accepts 16 to 64`}},
		{"missing fields", `idScope: 0ne00000A0A
individual:
  - registrationId: d1
groups:
  - name: g1
    primaryKey: ` + key + `
`, []string{`enrollments.yaml:3: individual "d1": primary key is missing`, `enrollments.yaml:3: individual "d1": assignedHub is missing`,
			`enrollments.yaml:5: group "g1": hubs is missing`}},
		{"unknown field and bad allocation", `idScope: 0ne00000A0A
groups:
  - name: g1
    primaryKey: ` + key + `
    hub: [x]
    hubs: [a, b]
    allocation: static
  - name: g2
    primaryKey: ` + key + `
    hubs: [a]
    allocation: random
`, []string{`enrollments.yaml:5: groups[0]: unknown field "hub"`, `enrollments.yaml:7: group "g1": static allocation needs exactly one hub, got 2`,
			`enrollments.yaml:11: group "g2": allocation "random": want static or hashed`}},
		{"repeated field and entry not a mapping", `idScope: 0ne00000A0A
idScope: 0ne00000A0B
groups:
  - g1
`, []string{`enrollments.yaml:2: enrollments: field "idScope" given twice`, `enrollments.yaml:4: groups[0]: want a mapping`}},
		{"duplicate registration id, case-insensitive", `idScope: 0ne00000A0A
individual:
  - {registrationId: dev-1, primaryKey: ` + key + `, assignedHub: h}
  - {registrationId: DEV-1, primaryKey: ` + key + `, assignedHub: h}
`, []string{`enrollments.yaml:4: individual "DEV-1": registration id already enrolled at line 3`}},
		{"bad registration id and enabled", `idScope: 0ne00000A0A
individual:
  - registrationId: "dev 1"
    primaryKey: ` + key + `
    assignedHub: h
    enabled: maybe
`, []string{`enrollments.yaml:3: individual "dev 1": registration id: character ' ' not allowed`, `enrollments.yaml:6: individual "dev 1": enabled must be true or false`}},
		{"missing id scope", `individual: []`, []string{`enrollments.yaml:1: idScope is missing`}},
		{"bad id scope", `idScope: "0ne/x"`, []string{`enrollments.yaml:1: idScope "0ne/x": character '/' not allowed`}},
		{"payload not an object", `idScope: s1
individual:
  - {registrationId: d, primaryKey: ` + key + `, assignedHub: h, payload: [1]}
`, []string{`enrollments.yaml:3: individual "d": payload must be a mapping`}},
		{"yaml syntax", "idScope: [\n", []string{"enrollments.yaml: "}},
		{"empty", "", []string{"enrollments.yaml: empty enrollments file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEnrollmentsFile("enrollments.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestParseEnrollmentsDefaults(t *testing.T) {
	e, err := ParseEnrollments([]byte(`idScope: s1
groups:
  - name: g
    primaryKey: q9+Nuw6LinAPOnExjvpUKaecInDPxI7FWmDlw67a3s8zCl8WCNxxPPW0zwReB0aoRbc8b+ASzbHtGHWVT/vtqg==
    hubs: [h1, h2]
`))
	if err != nil {
		t.Fatal(err)
	}
	g := e.Groups[0]
	if g.Allocation != AllocationHashed || g.Disabled || g.Line != 3 {
		t.Errorf("defaults: %+v", g)
	}
}
