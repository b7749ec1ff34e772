package sim

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hiltest/hiltest/mockdps"
	"github.com/hiltest/hiltest/protocol"
	"github.com/hiltest/hiltest/reference"
)

const (
	batScope  = "0ne00ABCDEF"
	batRegID  = "bat-device-01"
	batExpiry = 1900000000
)

// battery runs a fixed set of operations and returns their results.
func battery(t *testing.T, c *client) map[string]string {
	t.Helper()
	out := map[string]string{}
	d := c.ok(protocol.VerbDerive, protocol.String("group_key", katGroupKey), protocol.String("reg_id", batRegID))
	out["derive"] = d.String("device_key")
	s := c.ok(protocol.VerbSAS, protocol.String("id_scope", batScope), protocol.String("reg_id", batRegID),
		protocol.String("key", katDevKey), protocol.Int("expiry", batExpiry))
	for _, k := range []string{"sr", "sts", "sig", "se", "token"} {
		out["sas."+k] = s.String(k)
	}
	s = c.ok(protocol.VerbSAS, protocol.String("id_scope", batScope), protocol.String("reg_id", batRegID),
		protocol.String("key", katDevKey), protocol.Int("expiry", batExpiry), protocol.String("policy", "registration"))
	out["sas.policy.token"] = s.String("token")
	r := c.ok(protocol.VerbDPSRequest, protocol.String("id_scope", batScope), protocol.String("reg_id", batRegID),
		protocol.String("key", katDevKey), protocol.Int("expiry", batExpiry))
	out["req.key"] = string(c.result(r, "request"))
	r = c.ok(protocol.VerbDPSRequest, protocol.String("id_scope", batScope), protocol.String("reg_id", batRegID),
		protocol.String("group_key", katGroupKey), protocol.Int("expiry", batExpiry))
	out["req.group"] = string(c.result(r, "request"))
	return out
}

// expected computes the battery's results with the reference, with
// transformations standing in for a bug.
type expectOpts struct {
	dialect    reference.Dialect
	keyName    string
	noSKN      bool   // no skn even when a policy is given
	scope      string // resource scope
	rawSR      bool
	rawSig     bool
	apiVersion string
	groupSign  func(string) string // device key used for group requests
	derive     func(string) string // DERIVE result from the group key
	bodyID     string              // body registrationId
}

func expected(t *testing.T, o expectOpts) map[string]string {
	t.Helper()
	must := func(s string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if o.scope == "" {
		o.scope = batScope
	}
	token := func(key string) (sr, sts, sig, tok string) { return o.tokenWith(t, key) }
	out := map[string]string{}
	derived := must(reference.DeriveDeviceKey(katGroupKey, batRegID))
	out["derive"] = derived
	if o.derive != nil {
		out["derive"] = o.derive(katGroupKey)
	}
	sr, sts, sig, tok := token(katDevKey)
	pol := o
	if !o.noSKN {
		pol.keyName = "registration"
	}
	_, _, _, out["sas.policy.token"] = pol.tokenWith(t, katDevKey)
	out["sas.sr"], out["sas.sts"], out["sas.sig"], out["sas.se"], out["sas.token"] = sr, sts, sig, strconv.Itoa(batExpiry), tok
	req := func(tok string) string {
		b, err := reference.RegisterRequestBytes(reference.RequestParams{IDScope: batScope, RegistrationID: batRegID,
			APIVersion: o.apiVersion, Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		if o.bodyID != "" {
			body := `{"registrationId":"` + o.bodyID + `"}`
			i := bytes.Index(b, []byte("\r\n\r\n"))
			head := strings.Replace(string(b[:i]), "Content-Length: "+strconv.Itoa(len(b)-i-4), "Content-Length: "+strconv.Itoa(len(body)), 1)
			return head + "\r\n\r\n" + body
		}
		return string(b)
	}
	out["req.key"] = req(tok)
	gk := out["derive"]
	if o.groupSign != nil {
		gk = o.groupSign(katGroupKey)
	}
	_, _, _, gtok := token(gk)
	out["req.group"] = req(gtok)
	return out
}

func (o expectOpts) tokenWith(t *testing.T, key string) (sr, sts, sig, tok string) {
	t.Helper()
	if o.rawSR {
		sr = o.scope + "/registrations/" + batRegID
	} else {
		sr = o.dialect.Resource(o.scope, batRegID)
	}
	sts = reference.StringToSign(sr, batExpiry)
	sig, err := reference.Sign(key, sts)
	if err != nil {
		t.Fatal(err)
	}
	tok = reference.FormatToken(o.dialect, sr, sig, batExpiry, o.keyName)
	if o.rawSig {
		tok = strings.Replace(tok, "&sig="+o.dialect.Encode(sig), "&sig="+sig, 1)
	}
	return
}

func TestBugsProduceTheirWrongBytes(t *testing.T) {
	textKey := func(g string) string { return base64.StdEncoding.EncodeToString([]byte(g)) }
	for _, d := range Dialects() {
		dl := reference.Dialect(d)
		base := expectOpts{dialect: dl, keyName: dl.DefaultKeyName()}
		tests := []struct {
			bug  string
			opts func(o expectOpts) expectOpts
		}{
			{"", func(o expectOpts) expectOpts { return o }},
			{BugGroupKeySigning, func(o expectOpts) expectOpts {
				o.groupSign = func(g string) string { return g }
				return o
			}},
			{BugDeriveFromBase64Text, func(o expectOpts) expectOpts {
				o.derive = func(g string) string {
					k, err := reference.Sign(textKey(g), batRegID)
					if err != nil {
						t.Fatal(err)
					}
					return k
				}
				return o
			}},
			{BugSRNotEncoded, func(o expectOpts) expectOpts { o.rawSR = true; return o }},
			{BugSigNotEncoded, func(o expectOpts) expectOpts { o.rawSig = true; return o }},
			{BugMissingSKN, func(o expectOpts) expectOpts { o.keyName, o.noSKN = "", true; return o }},
			{BugWrongResource, func(o expectOpts) expectOpts { o.scope = WrongScope; return o }},
			{BugWrongAPIVersion, func(o expectOpts) expectOpts { o.apiVersion = WrongAPIVersion; return o }},
			{BugBodyIDMismatch, func(o expectOpts) expectOpts { o.bodyID = batRegID + " "; return o }},
			{BugTruncateKey64, func(o expectOpts) expectOpts {
				o.derive = func(g string) string {
					k, err := reference.DeriveDeviceKey(g[:64], batRegID)
					if err != nil {
						t.Fatal(err)
					}
					return k
				}
				return o
			}},
			// These two change nothing in the battery: their effect is in time.
			{BugUnsetClockExpiry, func(o expectOpts) expectOpts { return o }},
			{BugIgnoreRetryAfter, func(o expectOpts) expectOpts { return o }},
		}
		for _, tt := range tests {
			name := tt.bug
			if name == "" {
				name = "none"
			}
			t.Run(d+"/"+name, func(t *testing.T) {
				var bugs []string
				if tt.bug != "" {
					bugs = []string{tt.bug}
				}
				_, c := boot(t, Config{Seed: 20, Dialect: d, Bugs: bugs})
				got := battery(t, c)
				want := expected(t, tt.opts(base))
				correct := expected(t, base)
				differs := false
				for k, w := range want {
					if got[k] != w {
						t.Errorf("%s = %q\n   want %q", k, got[k], w)
					}
					if w != correct[k] {
						differs = true
					}
				}
				if tt.bug != "" && tt.bug != BugUnsetClockExpiry && tt.bug != BugIgnoreRetryAfter && !differs {
					t.Errorf("bug %s changes nothing", tt.bug)
				}
			})
		}
	}
}

func TestBugUnsetClockExpiry(t *testing.T) {
	for _, tt := range []struct {
		bugs     []string
		nearBoot bool
	}{{nil, false}, {[]string{BugUnsetClockExpiry}, true}} {
		_, c := boot(t, Config{Seed: 21, Bugs: tt.bugs})
		const now = 1_800_000_000
		c.ok(protocol.VerbTimeSet, protocol.Int("unix", now))
		s := c.ok(protocol.VerbSAS, protocol.String("id_scope", batScope), protocol.String("reg_id", batRegID),
			protocol.String("key", katDevKey), protocol.Int("ttl", 3600))
		se, _ := s.Int("se")
		if tt.nearBoot != (se < 100000) {
			t.Errorf("bugs %v: se = %d after TIME.SET %d with ttl 3600", tt.bugs, se, now)
		}
		// An explicit expiry is not affected.
		s = c.ok(protocol.VerbSAS, protocol.String("id_scope", batScope), protocol.String("reg_id", batRegID),
			protocol.String("key", katDevKey), protocol.Int("expiry", batExpiry))
		if s.String("se") != strconv.Itoa(batExpiry) {
			t.Errorf("bugs %v: expiry not kept: %s", tt.bugs, s.Redacted())
		}
	}
}

func TestBugIgnoreRetryAfter(t *testing.T) {
	s := mockdps.NewTestServer(t, mockdps.Options{AssignDelay: 600 * time.Millisecond, RetryAfter: 3})
	for _, tt := range []struct {
		bugs      []string
		tightPoll bool
	}{{nil, false}, {[]string{BugIgnoreRetryAfter}, true}} {
		_, c := dpsBoard(t, s, Config{Seed: 22, Bugs: tt.bugs})
		f, _ := register(t, c, protocol.String("id_scope", mockdps.DemoIDScope), protocol.String("reg_id", mockdps.DemoDevice1),
			protocol.String("key", mockdps.DemoDevice1PrimaryKey), protocol.Int("ttl", 600))
		polls := strings.Count(f.String("http"), ",")
		if f.String("status") != "assigned" {
			t.Errorf("bugs %v: %s", tt.bugs, f.Redacted())
		}
		// Honouring Retry-After: 3 s means one poll after a 600 ms assignment;
		// 50 ms polls mean several.
		if tt.tightPoll != (polls > 3) {
			t.Errorf("bugs %v: %d polls (http=%s)", tt.bugs, polls, f.String("http"))
		}
	}
}

// TestBugsAgainstMockDPS registers boards with each bug at the mock DPS,
// which must refuse them and say why.
func TestBugsAgainstMockDPS(t *testing.T) {
	s := mockdps.NewTestServer(t, mockdps.Options{RetryAfter: mockdps.RetryImmediately})
	for _, tt := range []struct {
		bug   string
		cause mockdps.Cause // "" = DPS accepts it
	}{
		{"", ""},
		{BugGroupKeySigning, mockdps.CauseGroupKeyUsed},
		{BugDeriveFromBase64Text, mockdps.CauseGroupKeyNotDecoded},
		{BugSRNotEncoded, mockdps.CauseSRNotEncoded},
		{BugMissingSKN, ""}, // azure-sdk-for-c sends no skn either: only a byte comparison finds it
		{BugWrongResource, mockdps.CauseResourceMismatch},
		{BugUnsetClockExpiry, mockdps.CauseClockNotSet},
		{BugWrongAPIVersion, mockdps.CauseBadAPIVersion},
		{BugBodyIDMismatch, mockdps.CauseRegistrationIDBody},
		{BugTruncateKey64, mockdps.CauseWrongKey},
	} {
		name := tt.bug
		if name == "" {
			name = "none"
		}
		t.Run(name, func(t *testing.T) {
			var bugs []string
			if tt.bug != "" {
				bugs = []string{tt.bug}
			}
			_, c := dpsBoard(t, s, Config{Seed: 23, Bugs: bugs})
			id := "bug-" + name
			f, _ := register(t, c, protocol.String("id_scope", mockdps.DemoIDScope), protocol.String("reg_id", id),
				protocol.String("group_key", mockdps.DemoGroupPrimaryKey), protocol.Int("ttl", 3600))
			if f.Kind != protocol.KindOK {
				t.Fatalf("DPS.REGISTER: %s", f.Redacted())
			}
			if tt.cause == "" {
				if f.String("status") != "assigned" {
					t.Errorf("status %s: %s", f.String("status"), f.Redacted())
				}
				return
			}
			if f.String("status") != "failed" || f.String("error_code") == "" {
				t.Errorf("want failed with an error code: %s", f.Redacted())
			}
			var causes []string
			for _, d := range s.Diagnoses() {
				if strings.EqualFold(d.RegistrationID, id) {
					causes = append(causes, string(d.Cause))
				}
			}
			found := false
			for _, x := range causes {
				found = found || x == string(tt.cause)
			}
			if !found {
				t.Errorf("mock diagnosed %v, want %s", causes, tt.cause)
			}
		})
	}
}
