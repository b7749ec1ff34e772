package mockdps

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/hiltest/hiltest/internal/yamlfile"
)

// Allocation is how an enrollment group picks the IoT hub for a device.
type Allocation string

const (
	// AllocationStatic assigns every device of the group to its single hub.
	AllocationStatic Allocation = "static"
	// AllocationHashed spreads devices over the group's hubs by a hash of
	// the registration id (the same id always lands on the same hub).
	AllocationHashed Allocation = "hashed"
)

// Enrollments is the set of enrollments a mock DPS instance serves.
type Enrollments struct {
	// IDScope is the DPS instance's id scope (the first path segment).
	IDScope string
	// Individual enrollments, one per registration id.
	Individual []IndividualEnrollment
	// Groups are symmetric-key enrollment groups: a device of a group signs
	// with the key derived from a group key and its registration id.
	Groups []GroupEnrollment
}

// IndividualEnrollment is one device with its own symmetric keys.
type IndividualEnrollment struct {
	RegistrationID string
	PrimaryKey     string // base64
	SecondaryKey   string // base64, optional
	AssignedHub    string
	DeviceID       string // "" = RegistrationID
	Disabled       bool
	// Payload is returned as registrationState.payload (initial data).
	Payload json.RawMessage
	// Line is the line of the entry in the enrollments file (0 if built in code).
	Line int
}

// GroupEnrollment is a symmetric-key enrollment group. Devices of the group
// get device id = registration id.
type GroupEnrollment struct {
	Name         string
	PrimaryKey   string // base64
	SecondaryKey string // base64, optional
	Hubs         []string
	Allocation   Allocation // "" = hashed
	Disabled     bool
	Payload      json.RawMessage
	Line         int
}

// EnrollmentError is one problem in an enrollments file, with its position:
// File, Line (0 when it has none) and Msg. Its Error method gives
// "file:line: msg", or "file: msg" without a line.
type EnrollmentError = yamlfile.Error

// LoadEnrollments reads and validates an enrollments YAML file. Errors name
// the file and line: `enrollments.yaml:12: group "g1": primary key is not base64`.
func LoadEnrollments(path string) (*Enrollments, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load enrollments: %w", err)
	}
	return ParseEnrollmentsFile(path, data)
}

// ParseEnrollments parses and validates enrollments YAML; errors are
// reported against the name "enrollments".
func ParseEnrollments(data []byte) (*Enrollments, error) {
	return ParseEnrollmentsFile("enrollments", data)
}

// ParseEnrollmentsFile is ParseEnrollments with the file name to use in errors.
//
// Format (see testdata/enrollments.yaml):
//
//	idScope: 0ne00DEMO01
//	individual:
//	  - registrationId: dev-1
//	    primaryKey: <base64>
//	    secondaryKey: <base64>      # optional
//	    assignedHub: hub-1.azure-devices.net
//	    deviceId: dev-1             # optional, default registrationId
//	    enabled: true               # optional, default true
//	    payload: {any: json}        # optional initial data, returned as registrationState.payload
//	groups:
//	  - name: g1
//	    primaryKey: <base64>
//	    secondaryKey: <base64>      # optional
//	    hubs: [hub-1.azure-devices.net, hub-2.azure-devices.net]
//	    allocation: hashed          # or static (exactly one hub); default hashed
//	    enabled: true
//	    payload: {...}
func ParseEnrollmentsFile(name string, data []byte) (*Enrollments, error) {
	p := &enrollParser{yamlfile.Collector{File: name}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// yaml errors already carry "line N:"; keep them, prefixed by the file.
		return nil, &EnrollmentError{File: name, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, &EnrollmentError{File: name, Msg: "empty enrollments file"}
	}
	e := p.root(doc.Content[0])
	if err := p.Err(); err != nil {
		return nil, err
	}
	return e, nil
}

// enrollParser collects the problems of an enrollments file.
type enrollParser struct{ yamlfile.Collector }

func (p *enrollParser) str(f map[string]*yaml.Node, key, what string) (string, int) {
	n := f[key]
	if n == nil {
		return "", 0
	}
	if n.Kind != yaml.ScalarNode {
		p.Linef(n.Line, "%s: %s must be a string", what, key)
		return "", n.Line
	}
	return n.Value, n.Line
}

// required is str for a field that must be there: when it is absent or
// empty, that is reported at the line of the entry n.
func (p *enrollParser) required(f map[string]*yaml.Node, n *yaml.Node, key, what string) (string, int) {
	s, line := p.str(f, key, what)
	if s == "" {
		p.Linef(n.Line, "%s: %s is missing", what, key)
	}
	return s, line
}

func (p *enrollParser) enabled(f map[string]*yaml.Node, what string) bool {
	n := f["enabled"]
	if n == nil {
		return true
	}
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		p.Linef(n.Line, "%s: enabled must be true or false", what)
		return true
	}
	return b
}

func (p *enrollParser) payload(f map[string]*yaml.Node, what string) json.RawMessage {
	n := f["payload"]
	if n == nil {
		return nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		p.Linef(n.Line, "%s: payload: %v", what, err)
		return nil
	}
	if _, ok := v.(map[string]any); !ok {
		p.Linef(n.Line, "%s: payload must be a mapping (a JSON object)", what)
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		p.Linef(n.Line, "%s: payload is not representable as JSON: %v", what, err)
		return nil
	}
	return b
}

func (p *enrollParser) key(f map[string]*yaml.Node, field, label, what string, required bool) string {
	k, line := p.str(f, field, what)
	if k == "" {
		if required {
			if line == 0 {
				line = p.lineOf(f)
			}
			p.Linef(line, "%s: %s is missing", what, label)
		}
		return ""
	}
	if err := checkKey(k); err != nil {
		p.Linef(line, "%s: %s %v", what, label, err)
	}
	return k
}

// keys reads the required primaryKey and the optional secondaryKey.
func (p *enrollParser) keys(f map[string]*yaml.Node, what string) (primary, secondary string) {
	return p.key(f, "primaryKey", "primary key", what, true), p.key(f, "secondaryKey", "secondary key", what, false)
}

// lineOf gives a line for errors about a missing field: the smallest line of
// the fields present.
func (p *enrollParser) lineOf(f map[string]*yaml.Node) int {
	line := 0
	for _, n := range f {
		if line == 0 || n.Line < line {
			line = n.Line
		}
	}
	return line
}

// checkKey applies the DPS rule for symmetric keys: base64, 16 to 64 bytes
// (MicrosoftDocs/azure-docs articles/iot-dps/concepts-symmetric-key-attestation.md).
func checkKey(k string) error {
	b, err := base64.StdEncoding.DecodeString(k)
	if err != nil {
		return errors.New("is not base64")
	}
	if len(b) < 16 || len(b) > 64 {
		return fmt.Errorf("decodes to %d bytes, DPS accepts 16 to 64", len(b))
	}
	return nil
}

func (p *enrollParser) root(n *yaml.Node) *Enrollments {
	e := &Enrollments{}
	f := p.Fields(n, "enrollments", "idScope", "individual", "groups")
	var line int
	e.IDScope, line = p.str(f, "idScope", "enrollments")
	if e.IDScope == "" {
		if line == 0 {
			line = n.Line
		}
		p.Linef(line, "idScope is missing")
	} else if err := checkIDScope(e.IDScope); err != nil {
		p.Linef(line, "idScope %q: %v", e.IDScope, err)
	}
	e.Individual = parseList(p, f, "individual", p.individual)
	e.Groups = parseList(p, f, "groups", p.group)
	return e
}

// parseList parses each item of the list field key with parse, which gets
// the item, its index and a map shared by the items for spotting repeats.
func parseList[T any](p *enrollParser, f map[string]*yaml.Node, key string, parse func(n *yaml.Node, i int, seen map[string]int) T) []T {
	l := f[key]
	if l == nil {
		return nil
	}
	if l.Kind != yaml.SequenceNode {
		p.Linef(l.Line, "%s: expected a list", key)
		return nil
	}
	var out []T
	seen := map[string]int{}
	for i, item := range l.Content {
		out = append(out, parse(item, i, seen))
	}
	return out
}

// firstUse records that id is first used at line, or, when seen already
// holds it, reports at line what: dupFormat, with the earlier line as the
// argument of dupFormat.
func (p *enrollParser) firstUse(seen map[string]int, id string, line int, what, dupFormat string) {
	if prev, dup := seen[id]; dup {
		p.Linef(line, "%s: "+dupFormat, what, prev)
		return
	}
	seen[id] = line
}

func (p *enrollParser) individual(n *yaml.Node, i int, seen map[string]int) IndividualEnrollment {
	what := fmt.Sprintf("individual[%d]", i)
	f := p.Fields(n, what, "registrationId", "primaryKey", "secondaryKey", "assignedHub", "deviceId", "enabled", "payload")
	ie := IndividualEnrollment{Line: n.Line}
	var line int
	ie.RegistrationID, line = p.required(f, n, "registrationId", what)
	if ie.RegistrationID != "" {
		what = fmt.Sprintf("individual %q", ie.RegistrationID)
		if err := checkRegistrationID(ie.RegistrationID); err != nil {
			p.Linef(line, "%s: %v", what, err)
		}
		p.firstUse(seen, strings.ToLower(ie.RegistrationID), line, what, "registration id already enrolled at line %d (ids are case-insensitive)")
	}
	ie.PrimaryKey, ie.SecondaryKey = p.keys(f, what)
	ie.AssignedHub, line = p.required(f, n, "assignedHub", what)
	if ie.AssignedHub != "" {
		if err := checkHub(ie.AssignedHub); err != nil {
			p.Linef(line, "%s: assignedHub %v", what, err)
		}
	}
	ie.DeviceID, _ = p.str(f, "deviceId", what)
	ie.Disabled = !p.enabled(f, what)
	ie.Payload = p.payload(f, what)
	return ie
}

func (p *enrollParser) group(n *yaml.Node, i int, seen map[string]int) GroupEnrollment {
	what := fmt.Sprintf("groups[%d]", i)
	f := p.Fields(n, what, "name", "primaryKey", "secondaryKey", "hubs", "allocation", "enabled", "payload")
	g := GroupEnrollment{Line: n.Line}
	var line int
	g.Name, line = p.required(f, n, "name", what)
	if g.Name != "" {
		what = fmt.Sprintf("group %q", g.Name)
		p.firstUse(seen, g.Name, line, what, "name already used at line %d")
	}
	g.PrimaryKey, g.SecondaryKey = p.keys(f, what)
	if h := f["hubs"]; h == nil {
		p.Linef(n.Line, "%s: hubs is missing", what)
	} else if h.Kind != yaml.SequenceNode || len(h.Content) == 0 {
		p.Linef(h.Line, "%s: hubs must be a non-empty list", what)
	} else {
		for _, hn := range h.Content {
			if hn.Kind != yaml.ScalarNode {
				p.Linef(hn.Line, "%s: hub must be a host name", what)
				continue
			}
			if err := checkHub(hn.Value); err != nil {
				p.Linef(hn.Line, "%s: hub %v", what, err)
			}
			g.Hubs = append(g.Hubs, hn.Value)
		}
	}
	a, line := p.str(f, "allocation", what)
	switch Allocation(a) {
	case "", AllocationHashed:
		g.Allocation = AllocationHashed
	case AllocationStatic:
		g.Allocation = AllocationStatic
		if len(g.Hubs) > 1 {
			p.Linef(line, "%s: static allocation needs exactly one hub, got %d", what, len(g.Hubs))
		}
	default:
		p.Linef(line, "%s: allocation %q: want static or hashed", what, a)
	}
	g.Disabled = !p.enabled(f, what)
	g.Payload = p.payload(f, what)
	return g
}

// checkIDScope accepts what DPS id scopes look like (e.g. 0ne00000A0A):
// 1 to 64 ASCII letters and digits.
func checkIDScope(s string) error {
	if len(s) == 0 || len(s) > 64 {
		return errors.New("must be 1 to 64 letters and digits")
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return fmt.Errorf("character %q not allowed (letters and digits only)", s[i])
		}
	}
	return nil
}

// checkRegistrationID applies the DPS rule: up to 128 characters, letters,
// digits and - . _ :, last character alphanumeric or '-'
// (MicrosoftDocs/azure-docs articles/iot-dps/iot-dps-https-sym-key-support.md).
func checkRegistrationID(id string) error {
	if len(id) == 0 || len(id) > 128 {
		return fmt.Errorf("registration id must be 1 to 128 characters, got %d", len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !isAlnum(c) && c != '-' && c != '.' && c != '_' && c != ':' {
			return fmt.Errorf("registration id: character %q not allowed (letters, digits, - . _ :)", c)
		}
	}
	if last := id[len(id)-1]; !isAlnum(last) && last != '-' {
		return fmt.Errorf("registration id: last character %q must be a letter, digit or '-'", last)
	}
	return nil
}

func checkHub(h string) error {
	if h == "" || strings.ContainsAny(h, " /\t\"") {
		return fmt.Errorf("%q is not a host name", h)
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Validate checks enrollments built in code with the same rules as the file
// loader (errors carry no line numbers).
func (e *Enrollments) Validate() error {
	if e == nil {
		return errors.New("enrollments: nil")
	}
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, &EnrollmentError{File: "enrollments", Msg: fmt.Sprintf(format, args...)})
	}
	if err := checkIDScope(e.IDScope); err != nil {
		add("idScope %q: %v", e.IDScope, err)
	}
	// checkKeys checks a required primary and an optional secondary key.
	checkKeys := func(what, primary, secondary string) {
		if err := checkKey(primary); err != nil {
			add("%s: primary key %v", what, err)
		}
		if secondary != "" {
			if err := checkKey(secondary); err != nil {
				add("%s: secondary key %v", what, err)
			}
		}
	}
	seen := map[string]bool{}
	for _, ie := range e.Individual {
		what := fmt.Sprintf("individual %q", ie.RegistrationID)
		if err := checkRegistrationID(ie.RegistrationID); err != nil {
			add("%s: %v", what, err)
		}
		low := strings.ToLower(ie.RegistrationID)
		if seen[low] {
			add("%s: registration id enrolled twice", what)
		}
		seen[low] = true
		checkKeys(what, ie.PrimaryKey, ie.SecondaryKey)
		if err := checkHub(ie.AssignedHub); err != nil {
			add("%s: assignedHub %v", what, err)
		}
	}
	names := map[string]bool{}
	for _, g := range e.Groups {
		what := fmt.Sprintf("group %q", g.Name)
		if g.Name == "" {
			add("group: name is missing")
		}
		if names[g.Name] {
			add("%s: name used twice", what)
		}
		names[g.Name] = true
		checkKeys(what, g.PrimaryKey, g.SecondaryKey)
		if len(g.Hubs) == 0 {
			add("%s: hubs is empty", what)
		}
		for _, h := range g.Hubs {
			if err := checkHub(h); err != nil {
				add("%s: hub %v", what, err)
			}
		}
		switch g.Allocation {
		case "", AllocationHashed:
		case AllocationStatic:
			if len(g.Hubs) > 1 {
				add("%s: static allocation needs exactly one hub", what)
			}
		default:
			add("%s: allocation %q: want static or hashed", what, g.Allocation)
		}
	}
	return errors.Join(errs...)
}
