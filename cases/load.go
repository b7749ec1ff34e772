package cases

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hiltest/hiltest/harness"
	"github.com/hiltest/hiltest/internal/yamlfile"
	"github.com/hiltest/hiltest/protocol"
	"github.com/hiltest/hiltest/reference"
)

//go:embed data/*.yaml
var builtinData embed.FS

// Vector kinds: what a case file entry asks the board to do.
const (
	KindDerive  = "derive"  // DERIVE: group key + registration id -> device key
	KindSAS     = "sas"     // SAS: token parts (sr, sts, sig, se, token)
	KindRequest = "request" // DPS.REQUEST: the register request bytes
)

// vector is one entry of a case file, validated.
type vector struct {
	File string
	Line int

	ID, Kind, Title, Source string
	Optional                bool
	Timeout                 time.Duration
	Requires                []string
	Dialects                []reference.Dialect // the case runs only on boards whose dialect is listed; nil = all

	GroupKey, Key  string
	RegID, IDScope string
	Resource       string
	Expiry         *int64
	TTL            int64
	Policy         *string // nil = the dialect decides; "" = no skn
	Payload        string
	APIVersion     string
	Host           string
	Port           int
	ExtraArgs      [][2]string // added to the request as given (e.g. an unknown argument)

	ExpectDialect reference.Dialect // the dialect of the published strings in Expect
	Expect        map[string]string // published known answers (device_key, sr, sts, sig, se, token)
	ExpectError   protocol.Code     // the board must answer ERR with this code
	ErrorArg      string            // ... naming this argument (arg=)
	AcceptError   []protocol.Code   // ERR codes accepted instead of a result

	set map[string]bool // fields given (after defaults), for vectors that leave inputs out
}

// inputFields are the fields a vector (or a file's defaults) may set, per kind.
var inputFields = map[string][]string{
	KindDerive:  {"group_key", "reg_id", "extra_args"},
	KindSAS:     {"id_scope", "reg_id", "resource", "key", "group_key", "expiry", "ttl", "policy", "extra_args"},
	KindRequest: {"id_scope", "reg_id", "key", "group_key", "expiry", "ttl", "payload", "api_version", "host", "port", "extra_args"},
}

// expectFields are the published answers a kind may assert.
var expectFields = map[string][]string{
	KindDerive:  {"device_key"},
	KindSAS:     {"sr", "sts", "sig", "se", "token"},
	KindRequest: {"request"},
}

// commonFields are the fields every vector may set.
var commonFields = []string{"id", "kind", "title", "source", "optional", "timeout", "requires", "dialects",
	"expect", "expect_dialect", "expect_error", "error_arg", "accept_error"}

var knownCaps = []string{protocol.CapPing, protocol.CapReset, protocol.CapTime, protocol.CapDerive, protocol.CapSAS,
	protocol.CapDPSConfig, protocol.CapDPSRequest, protocol.CapDPSRegister, protocol.CapTLSCA, protocol.CapNetWiFi,
	protocol.CapBlob}

var caseIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._/-]*$`)

// argKeyPattern is the grammar of a frame argument key (protocol/PROTOCOL.md §1).
var argKeyPattern = regexp.MustCompile(`^[a-z0-9_.]{1,32}$`)

// FileError is one problem in a case file, with its position: File, Line
// (0 when it has none) and Msg. Its Error method gives "file:line: msg", or
// "file: msg" without a line.
type FileError = yamlfile.Error

// Load reads every case file (*.yaml, *.yml) in dir, in name order, and
// returns its cases. Files are validated as a whole: every problem is
// reported, each as "file:line: message" (see FileError), joined into one
// error. Case ids must be unique across the directory.
//
// dir may also name a single case file.
func Load(dir string) ([]harness.Case, error) {
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		return loadFiles(os.DirFS(filepath.Dir(dir)), []string{filepath.Base(dir)}, filepath.Dir(dir))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load cases: %w", err)
	}
	var files []string
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if ext := filepath.Ext(e.Name()); ext == ".yaml" || ext == ".yml" {
			files = append(files, e.Name())
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("load cases: no case files (*.yaml) in %s", dir)
	}
	return loadFiles(os.DirFS(dir), files, dir)
}

// loadFiles parses the named files of fsys; prefix is joined to the names in
// error messages.
func loadFiles(fsys fs.FS, names []string, prefix string) ([]harness.Case, error) {
	sort.Strings(names)
	var (
		errs []error
		vs   []vector
	)
	seen := map[string]string{} // id -> file:line
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("load cases: %w", err))
			continue
		}
		shown := name
		if prefix != "" {
			shown = filepath.Join(prefix, name)
		}
		fv, err := parseCaseFile(shown, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, v := range fv {
			at := fmt.Sprintf("%s:%d", v.File, v.Line)
			if prev, dup := seen[v.ID]; dup {
				errs = append(errs, &FileError{File: v.File, Line: v.Line, Msg: fmt.Sprintf("case %q: id already used at %s", v.ID, prev)})
				continue
			}
			seen[v.ID] = at
			vs = append(vs, v)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	out := make([]harness.Case, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.toCase())
	}
	return out, nil
}

// builtinVectors returns the cases of the embedded case files.
func builtinVectors() ([]harness.Case, error) {
	entries, err := fs.ReadDir(builtinData, "data")
	if err != nil {
		return nil, fmt.Errorf("built-in cases: %w", err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".yaml") {
			names = append(names, path.Join("data", e.Name()))
		}
	}
	sub, err := fs.Sub(builtinData, ".")
	if err != nil {
		return nil, fmt.Errorf("built-in cases: %w", err)
	}
	cs, err := loadFiles(sub, names, "")
	if err != nil {
		return nil, fmt.Errorf("built-in cases: %w", err)
	}
	return cs, nil
}

// ParseFile parses one case file's contents; name is used in errors.
func ParseFile(name string, data []byte) ([]harness.Case, error) {
	vs, err := parseCaseFile(name, data)
	if err != nil {
		return nil, err
	}
	out := make([]harness.Case, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.toCase())
	}
	return out, nil
}

// fileParser collects the problems of one file.
type fileParser struct{ yamlfile.Collector }

func parseCaseFile(name string, data []byte) ([]vector, error) {
	p := &fileParser{yamlfile.Collector{File: name}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &FileError{File: name, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, &FileError{File: name, Msg: "empty case file"}
	}
	root := doc.Content[0]
	top := p.mapping(root, "the file", []string{"defaults", "cases"})
	if top == nil {
		return nil, p.Err()
	}
	var defaults map[string]*yaml.Node
	if n, ok := top["defaults"]; ok {
		var all []string
		for _, k := range []string{KindDerive, KindSAS, KindRequest} {
			for _, f := range inputFields[k] {
				if !slices.Contains(all, f) {
					all = append(all, f)
				}
			}
		}
		defaults = p.mapping(n, "defaults", all)
	}
	casesNode, ok := top["cases"]
	if !ok {
		p.Linef(root.Line, "no \"cases\" list")
		return nil, p.Err()
	}
	if casesNode.Kind != yaml.SequenceNode {
		p.Linef(casesNode.Line, "\"cases\" must be a list")
		return nil, p.Err()
	}
	if len(casesNode.Content) == 0 {
		p.Linef(casesNode.Line, "\"cases\" is empty")
	}
	var vs []vector
	for i, n := range casesNode.Content {
		v, ok := p.vector(n, i, defaults)
		if ok {
			vs = append(vs, v)
		}
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return vs, nil
}

// mapping checks that n is a mapping with only the known keys (each once)
// and returns its values by key; nil when n is not a mapping.
func (p *fileParser) mapping(n *yaml.Node, what string, known []string) map[string]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		p.Linef(n.Line, "%s must be a mapping", what)
		return nil
	}
	m := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.Linef(k.Line, "%s: keys must be plain names", what)
			continue
		}
		if !slices.Contains(known, k.Value) {
			p.Linef(k.Line, "%s: unknown field %q%s", what, k.Value, suggest(k.Value, known))
			continue
		}
		if _, dup := m[k.Value]; dup {
			p.Linef(k.Line, "%s: field %q given twice", what, k.Value)
			continue
		}
		m[k.Value] = v
	}
	return m
}

// suggest returns " (did you mean "x"?)" for a near miss.
func suggest(s string, known []string) string {
	norm := func(x string) string { return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(x)) }
	for _, k := range known {
		if norm(k) == norm(s) {
			return fmt.Sprintf(" (did you mean %q?)", k)
		}
	}
	return ""
}

func (p *fileParser) scalar(n *yaml.Node, what, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		p.Linef(n.Line, "%s: %s must be a single value", what, field)
		return "", false
	}
	return n.Value, true
}

func (p *fileParser) str(n *yaml.Node, what, field string) (string, bool) {
	s, ok := p.scalar(n, what, field)
	if !ok {
		return "", false
	}
	if n.Tag == "!!null" {
		return "", true
	}
	return s, true
}

func (p *fileParser) integer(n *yaml.Node, what, field string) (int64, bool) {
	s, ok := p.scalar(n, what, field)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
	if err != nil || n.Tag == "!!str" {
		p.Linef(n.Line, "%s: %s %q is not a whole number", what, field, s)
		return 0, false
	}
	return v, true
}

func (p *fileParser) boolean(n *yaml.Node, what, field string) (bool, bool) {
	s, ok := p.scalar(n, what, field)
	if !ok {
		return false, false
	}
	switch s {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	p.Linef(n.Line, "%s: %s must be true or false, not %q", what, field, s)
	return false, false
}

func (p *fileParser) list(n *yaml.Node, what, field string) ([]string, bool) {
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}, true
	}
	if n.Kind != yaml.SequenceNode {
		p.Linef(n.Line, "%s: %s must be a list", what, field)
		return nil, false
	}
	var out []string
	for _, c := range n.Content {
		if c.Kind != yaml.ScalarNode {
			p.Linef(c.Line, "%s: %s items must be single values", what, field)
			return nil, false
		}
		out = append(out, c.Value)
	}
	return out, true
}

// vector parses and validates one entry of "cases".
func (p *fileParser) vector(n *yaml.Node, i int, defaults map[string]*yaml.Node) (vector, bool) {
	nerr := p.Len()
	what := fmt.Sprintf("case #%d", i+1)
	if n.Kind != yaml.MappingNode {
		p.Linef(n.Line, "%s must be a mapping", what)
		return vector{}, false
	}
	// First pass for id and kind, to name the case and choose its fields.
	var id, kind string
	for j := 0; j+1 < len(n.Content); j += 2 {
		switch n.Content[j].Value {
		case "id":
			id = n.Content[j+1].Value
		case "kind":
			kind = n.Content[j+1].Value
		}
	}
	if id != "" {
		what = fmt.Sprintf("case %q", id)
	}
	v := vector{File: p.File, Line: n.Line, ID: id, Kind: kind}
	if id == "" {
		p.Linef(n.Line, "%s: no id", what)
	} else if !caseIDPattern.MatchString(id) {
		p.Linef(n.Line, "%s: id must be lowercase letters, digits and . _ / -", what)
	}
	inputs, ok := inputFields[kind]
	if !ok {
		if kind == "" {
			p.Linef(n.Line, "%s: no kind (one of derive, sas, request)", what)
		} else {
			p.Linef(n.Line, "%s: unknown kind %q (one of derive, sas, request)", what, kind)
		}
		return vector{}, false
	}
	f := p.mapping(n, what, append(slices.Clone(commonFields), inputs...))
	if f == nil {
		return vector{}, false
	}
	// File defaults apply to the fields this kind has and the case does not set.
	for k, dv := range defaults {
		if _, set := f[k]; !set && slices.Contains(inputs, k) {
			f[k] = dv
		}
	}
	// A null value unsets the field (and so overrides a default).
	v.set = map[string]bool{}
	for k, nd := range f {
		if nd.Kind == yaml.ScalarNode && nd.Tag == "!!null" {
			delete(f, k)
			continue
		}
		v.set[k] = true
	}
	get := func(field string) (*yaml.Node, bool) { nd, ok := f[field]; return nd, ok }

	if nd, ok := get("title"); ok {
		v.Title, _ = p.str(nd, what, "title")
	}
	if nd, ok := get("source"); ok {
		v.Source, _ = p.str(nd, what, "source")
	}
	if nd, ok := get("optional"); ok {
		v.Optional, _ = p.boolean(nd, what, "optional")
	}
	if nd, ok := get("timeout"); ok {
		if s, ok := p.str(nd, what, "timeout"); ok {
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				p.Linef(nd.Line, "%s: timeout %q is not a positive duration such as 10s", what, s)
			}
			v.Timeout = d
		}
	}
	if nd, ok := get("requires"); ok {
		if caps, ok := p.list(nd, what, "requires"); ok {
			for _, c := range caps {
				if !slices.Contains(knownCaps, c) {
					p.Linef(nd.Line, "%s: unknown capability %q (known: %s)", what, c, strings.Join(knownCaps, ", "))
				}
			}
			v.Requires = caps
		}
	}
	if nd, ok := get("dialects"); ok {
		if ds, ok := p.list(nd, what, "dialects"); ok {
			for _, s := range ds {
				d, err := reference.ParseDialect(s)
				if err != nil || s == "" {
					p.Linef(nd.Line, "%s: unknown dialect %q", what, s)
					continue
				}
				v.Dialects = append(v.Dialects, d)
			}
		}
	}
	if nd, ok := get("group_key"); ok {
		v.GroupKey, _ = p.str(nd, what, "group_key")
	}
	if nd, ok := get("key"); ok {
		v.Key, _ = p.str(nd, what, "key")
	}
	_, hasRegID := get("reg_id")
	if hasRegID {
		v.RegID, _ = p.str(f["reg_id"], what, "reg_id")
	}
	if nd, ok := get("id_scope"); ok {
		v.IDScope, _ = p.str(nd, what, "id_scope")
	}
	if nd, ok := get("resource"); ok {
		v.Resource, _ = p.str(nd, what, "resource")
	}
	if nd, ok := get("expiry"); ok {
		if e, ok := p.integer(nd, what, "expiry"); ok {
			if e < 0 {
				p.Linef(nd.Line, "%s: expiry %d is negative", what, e)
			}
			v.Expiry = &e
		}
	}
	if nd, ok := get("ttl"); ok {
		if e, ok := p.integer(nd, what, "ttl"); ok {
			if e <= 0 {
				p.Linef(nd.Line, "%s: ttl must be positive seconds", what)
			}
			v.TTL = e
		}
	}
	if nd, ok := get("policy"); ok {
		if s, ok := p.str(nd, what, "policy"); ok {
			v.Policy = &s
		}
	}
	if nd, ok := get("payload"); ok {
		if s, ok := p.str(nd, what, "payload"); ok {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal([]byte(s), &obj); err != nil {
				p.Linef(nd.Line, "%s: payload must be a JSON object: %v", what, err)
			}
			v.Payload = s
		}
	}
	if nd, ok := get("api_version"); ok {
		if s, ok := p.str(nd, what, "api_version"); ok {
			if !slices.Contains(reference.SupportedAPIVersions(), s) {
				p.Linef(nd.Line, "%s: api_version %q is not one of %s", what, s, strings.Join(reference.SupportedAPIVersions(), ", "))
			}
			v.APIVersion = s
		}
	}
	if nd, ok := get("host"); ok {
		v.Host, _ = p.str(nd, what, "host")
	}
	if nd, ok := get("port"); ok {
		if e, ok := p.integer(nd, what, "port"); ok {
			if e < 1 || e > 65535 {
				p.Linef(nd.Line, "%s: port %d is not 1..65535", what, e)
			}
			v.Port = int(e)
		}
	}
	if nd, ok := get("extra_args"); ok {
		if nd.Kind != yaml.MappingNode {
			p.Linef(nd.Line, "%s: extra_args must be a mapping of argument names to values", what)
		} else {
			for j := 0; j+1 < len(nd.Content); j += 2 {
				k, val := nd.Content[j], nd.Content[j+1]
				if !argKeyPattern.MatchString(k.Value) {
					p.Linef(k.Line, "%s: extra_args: %q is not a valid argument name", what, k.Value)
					continue
				}
				s, _ := p.str(val, what, "extra_args."+k.Value)
				v.ExtraArgs = append(v.ExtraArgs, [2]string{k.Value, s})
			}
		}
	}
	if nd, ok := get("expect_dialect"); ok {
		if s, ok := p.str(nd, what, "expect_dialect"); ok {
			d, err := reference.ParseDialect(s)
			if err != nil || s == "" {
				p.Linef(nd.Line, "%s: unknown expect_dialect %q", what, s)
			}
			v.ExpectDialect = d
		}
	}
	if nd, ok := get("expect"); ok {
		m := p.mapping(nd, what+": expect", expectFields[kind])
		v.Expect = map[string]string{}
		for k, val := range m {
			v.Expect[k], _ = p.str(val, what, "expect."+k)
		}
	}
	if nd, ok := get("expect_error"); ok {
		if s, ok := p.str(nd, what, "expect_error"); ok {
			v.ExpectError = protocol.Code(s)
			if !v.ExpectError.Known() {
				p.Linef(nd.Line, "%s: expect_error %q is not a protocol error code", what, s)
			}
		}
	}
	if nd, ok := get("error_arg"); ok {
		v.ErrorArg, _ = p.str(nd, what, "error_arg")
		if v.ExpectError == "" {
			p.Linef(nd.Line, "%s: error_arg needs expect_error", what)
		}
	}
	if nd, ok := get("accept_error"); ok {
		if codes, ok := p.list(nd, what, "accept_error"); ok {
			for _, c := range codes {
				if !protocol.Code(c).Known() {
					p.Linef(nd.Line, "%s: accept_error %q is not a protocol error code", what, c)
				}
				v.AcceptError = append(v.AcceptError, protocol.Code(c))
			}
		}
	}
	if p.Len() == nerr {
		p.check(&v, what, f)
	}
	return v, p.Len() == nerr
}

// check validates the combination of fields of a parsed vector.
func (p *fileParser) check(v *vector, what string, f map[string]*yaml.Node) {
	line := func(field string) int {
		if nd, ok := f[field]; ok {
			return nd.Line
		}
		return v.Line
	}
	if v.ExpectError != "" {
		if len(v.Expect) > 0 {
			p.Linef(line("expect"), "%s: expect and expect_error exclude each other", what)
		}
		if len(v.AcceptError) > 0 {
			p.Linef(line("accept_error"), "%s: accept_error and expect_error exclude each other", what)
		}
		// A vector that expects an error may leave out or break any input.
		return
	}
	key := func(field, s string) {
		if _, err := reference.DecodeKey(s); err != nil {
			p.Linef(line(field), "%s: %s: %v", what, field, err)
		}
	}
	regID := func() {
		if _, ok := f["reg_id"]; !ok {
			p.Linef(v.Line, "%s: reg_id is required", what)
			return
		}
		if err := reference.ValidateRegistrationID(v.RegID); err != nil {
			p.Linef(line("reg_id"), "%s: reg_id: %v", what, err)
		}
	}
	scope := func() {
		if err := reference.ValidateIDScope(v.IDScope); err != nil {
			p.Linef(line("id_scope"), "%s: id_scope: %v", what, err)
		}
	}
	oneKey := func() {
		switch {
		case v.Key != "" && v.GroupKey != "":
			p.Linef(line("group_key"), "%s: give key or group_key, not both", what)
		case v.Key != "":
			key("key", v.Key)
		case v.GroupKey != "":
			key("group_key", v.GroupKey)
		default:
			p.Linef(v.Line, "%s: key or group_key is required", what)
		}
	}
	oneExpiry := func() {
		switch {
		case v.Expiry != nil && v.TTL != 0:
			p.Linef(line("ttl"), "%s: give expiry or ttl, not both", what)
		case v.Expiry == nil && v.TTL == 0:
			p.Linef(v.Line, "%s: expiry or ttl is required", what)
		case v.Expiry != nil && *v.Expiry == 0 && len(v.AcceptError) == 0:
			p.Linef(line("expiry"), "%s: expiry 0 needs accept_error (a board may refuse it)", what)
		}
	}
	switch v.Kind {
	case KindDerive:
		if v.GroupKey == "" {
			p.Linef(v.Line, "%s: group_key is required", what)
		} else {
			key("group_key", v.GroupKey)
		}
		regID()
	case KindSAS:
		if v.Resource != "" {
			if v.IDScope != "" || v.RegID != "" {
				p.Linef(line("resource"), "%s: give resource or id_scope and reg_id, not both", what)
			}
			if v.GroupKey != "" {
				p.Linef(line("group_key"), "%s: a group key needs a registration id to derive from; use key with resource", what)
			}
		} else {
			scope()
			regID()
		}
		oneKey()
		oneExpiry()
	case KindRequest:
		scope()
		regID()
		oneKey()
		oneExpiry()
	}
	if len(v.Expect) > 0 && v.Kind != KindDerive {
		if _, ok := f["expect_dialect"]; !ok {
			p.Linef(line("expect"), "%s: expect needs expect_dialect (the dialect the published strings are in)", what)
		}
		if v.TTL != 0 {
			p.Linef(line("expect"), "%s: expect needs a fixed expiry, not ttl", what)
		}
	}
	if v.Kind == KindRequest && len(v.Expect) > 0 {
		if v.Host == "" {
			p.Linef(line("expect"), "%s: expect.request needs host", what)
		}
	}
	if v.Title == "" {
		v.Title = defaultTitle(v)
	}
}

func defaultTitle(v *vector) string {
	switch v.Kind {
	case KindDerive:
		return fmt.Sprintf("DERIVE for %q", v.RegID)
	case KindSAS:
		if v.Resource != "" {
			return fmt.Sprintf("SAS for resource %q", v.Resource)
		}
		return fmt.Sprintf("SAS for %q in scope %s", v.RegID, v.IDScope)
	default:
		return fmt.Sprintf("DPS.REQUEST for %q in scope %s", v.RegID, v.IDScope)
	}
}
