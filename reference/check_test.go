package reference

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCheckToken(t *testing.T) {
	v := loadVectors(t)
	groupKey := v.Derive[0].GroupKey
	const scope, id = "0ne00000A0A", "dev-01"
	devKey, err := DeriveDeviceKey(groupKey, id)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1700000000, 0)
	exp := now.Add(time.Hour).Unix()
	mk := func(d Dialect, key, resource string, expiry int64, keyName string) string {
		t.Helper()
		p := SASParams{Dialect: d, Key: key, Expiry: expiry, KeyName: keyName}
		if resource != "" {
			p.Resource = resource
		} else {
			p.IDScope, p.RegistrationID = scope, id
		}
		s, err := NewSAS(p)
		if err != nil {
			t.Fatal(err)
		}
		return s.Token
	}
	good := mk(DialectDefault, devKey, "", exp, "registration")
	opts := CheckOptions{IDScope: scope, RegistrationID: id, Now: now, GroupKey: groupKey}

	tests := []struct {
		name     string
		token    string
		key      string
		opts     CheckOptions
		valid    bool
		dialects []Dialect
		problems []string
	}{
		{"default", good, devKey, opts, true, []Dialect{DialectDefault}, nil},
		{"azure-sdk-for-c", mk(DialectAzureSDKForC, devKey, "", exp, ""), devKey, opts, true, []Dialect{DialectAzureSDKForC}, nil},
		{"azure-iot-sdk-c", mk(DialectAzureIoTSDKC, devKey, "", exp, "registration"), devKey, opts, true, []Dialect{DialectAzureIoTSDKC}, nil},
		{"registration id in other case", good, devKey,
			CheckOptions{IDScope: scope, RegistrationID: "DEV-01", Now: now}, true, []Dialect{DialectDefault}, nil},
		{"no scope to compare", good, devKey, CheckOptions{Now: now}, true, []Dialect{DialectDefault}, nil},
		{"group key used", mk(DialectDefault, groupKey, "", exp, "registration"), devKey, opts, false,
			[]Dialect{DialectDefault}, []string{ProblemGroupKeyUsed}},
		{"wrong key", good, "YWJjZGVmZ2g=", opts, false, []Dialect{DialectDefault}, []string{ProblemWrongKey}},
		{"bad key", good, "###", opts, false, []Dialect{DialectDefault}, []string{ProblemBadKey}},
		{"resource mismatch", mk(DialectDefault, devKey, scope+"/registrations/dev-02", exp, "registration"), devKey, opts, false,
			[]Dialect{DialectDefault}, []string{ProblemResourceMismatch}},
		{"expired", mk(DialectDefault, devKey, "", now.Unix()-1, "registration"), devKey, opts, false,
			[]Dialect{DialectDefault}, []string{ProblemExpired}},
		{"clock not set", mk(DialectDefault, devKey, "", 3600, "registration"), devKey, opts, false,
			[]Dialect{DialectDefault}, []string{ProblemClockNotSet, ProblemExpired}},
		{"expiry too far", mk(DialectDefault, devKey, "", now.Add(2*MaxTokenLifetime).Unix(), "registration"), devKey, opts, false,
			[]Dialect{DialectDefault}, []string{ProblemExpiryTooFar}},
		{"wrong skn", mk(DialectDefault, devKey, "", exp, "iothubowner"), devKey, opts, false,
			[]Dialect{DialectDefault}, []string{ProblemWrongSKN}},
		{"malformed", "SharedAccessSignature sr=x", devKey, opts, false, nil, []string{ProblemMalformed}},
		{"lowercased resource", mk(DialectDefault, devKey, strings.ToLower(scope)+"/registrations/"+id, exp, "registration"), devKey, opts, false,
			[]Dialect{DialectDefault}, []string{ProblemResourceMismatch}},
		{"dialect as expected", good, devKey,
			CheckOptions{IDScope: scope, RegistrationID: id, Now: now, Dialect: DialectDefault}, true, []Dialect{DialectDefault}, nil},
		{"dialect mismatch", mk(DialectAzureIoTSDKC, devKey, "", exp, "registration"), devKey,
			CheckOptions{IDScope: scope, RegistrationID: id, Now: now, Dialect: DialectDefault}, false,
			[]Dialect{DialectAzureIoTSDKC}, []string{ProblemDialectMismatch}},
		{"missing prefix", strings.TrimPrefix(good, TokenPrefix), devKey, opts, false,
			[]Dialect{DialectDefault}, []string{ProblemMissingPrefix}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := CheckToken(tt.token, tt.key, tt.opts)
			if c.Valid != tt.valid {
				t.Errorf("Valid = %v, want %v (%s)", c.Valid, tt.valid, c.Summary())
			}
			if !slices.Equal(c.Dialects, tt.dialects) {
				t.Errorf("Dialects = %v, want %v", c.Dialects, tt.dialects)
			}
			var codes []string
			for _, p := range c.Problems {
				codes = append(codes, p.Code)
				if p.Message == "" {
					t.Errorf("problem %s has no message", p.Code)
				}
			}
			if !slices.Equal(codes, tt.problems) {
				t.Errorf("problems = %v, want %v (%s)", codes, tt.problems, c.Summary())
			}
			if strings.Contains(c.Summary(), devKey) || strings.Contains(c.Summary(), groupKey) {
				t.Errorf("summary leaks a key: %s", c.Summary())
			}
		})
	}
}

// TestCheckTokenUnencoded: tokens whose sr or sig were not URL-encoded verify
// over the bytes sent but are reported, and match no dialect.
func TestCheckTokenUnencoded(t *testing.T) {
	const key = "NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg="
	now := time.Unix(1700000000, 0)
	sr := "0ne00000A0A/registrations/dev"
	sig, err := Sign(key, StringToSign(sr, 1700003600))
	if err != nil {
		t.Fatal(err)
	}
	tok := "SharedAccessSignature sr=" + sr + "&sig=" + sig + "&se=1700003600&skn=registration"
	c := CheckToken(tok, key, CheckOptions{IDScope: "0ne00000A0A", RegistrationID: "dev", Now: now})
	if !c.SignatureOK || c.Valid {
		t.Errorf("SignatureOK=%v Valid=%v, want true/false", c.SignatureOK, c.Valid)
	}
	if !c.Has(ProblemSRNotEncoded) || !c.Has(ProblemSigNotEncoded) {
		t.Errorf("problems = %+v", c.Problems)
	}
	if len(c.Dialects) != 0 {
		t.Errorf("Dialects = %v, want none", c.Dialects)
	}
	if c.ExpiresIn != time.Hour {
		t.Errorf("ExpiresIn = %v, want 1h", c.ExpiresIn)
	}
}

// TestCheckTokenDiagnoses: tokens made with the usual mistakes are
// recognised for what they are.
func TestCheckTokenDiagnoses(t *testing.T) {
	groupKey := loadVectors(t).Derive[0].GroupKey
	const scope, id = "0ne00000A0A", "dev-ab"
	devKey, err := DeriveDeviceKey(groupKey, id)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1700000000, 0)
	const se = 1700003600
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	// token signs sts with signKey and sends sr.
	token := func(signKey, sts, sr string) string {
		t.Helper()
		sig, err := Sign(signKey, StringToSign(sts, se))
		if err != nil {
			t.Fatal(err)
		}
		return FormatToken(DialectDefault, sr, sig, se, "registration")
	}
	upper := DialectDefault.Resource(scope, id)
	lower := DialectAzureSDKForC.Resource(scope, id)
	textDerived := b64(macBytes([]byte(groupKey), id))
	caseDerived, _ := DeriveDeviceKey(groupKey, "DEV-AB")
	tests := []struct {
		name, token, code, msg string
	}{
		{"signed %2F sent %2f", token(devKey, upper, lower), ProblemSREncodingMismatch, "signed \"0ne00000A0A%2Fregistrations%2Fdev-ab\""},
		{"signed the raw resource", token(devKey, RawResource(scope, id), upper), ProblemSREncodingMismatch, "signed \"0ne00000A0A/registrations/dev-ab\""},
		{"group key used", token(groupKey, upper, upper), ProblemGroupKeyUsed, "group enrollment key itself"},
		{"group key used, other encoding", token(groupKey, lower, upper), ProblemGroupKeyUsed, "while sending"},
		{"device key text", token(b64([]byte(devKey)), upper, upper), ProblemKeyNotDecoded, "base64 text of the key"},
		{"group key text", token(textDerived, upper, upper), ProblemGroupKeyNotDecoded, "base64 text of the group key"},
		{"id case", token(caseDerived, upper, upper), ProblemWrongKey, `derived for registration id "DEV-AB"`},
		{"unrelated key", token("YWJjZGVmZ2g=", upper, upper), ProblemWrongKey, "does not verify with the given key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := CheckToken(tt.token, devKey, CheckOptions{IDScope: scope, RegistrationID: id, Now: now, GroupKey: groupKey})
			if c.Valid || c.SignatureOK || len(c.Problems) != 1 || c.Problems[0].Code != tt.code ||
				!strings.Contains(c.Problems[0].Message, tt.msg) {
				t.Errorf("problems %+v, want one %s mentioning %q", c.Problems, tt.code, tt.msg)
			}
		})
	}
	// Without the group key only the key's own mistakes can be recognised.
	c := CheckToken(token(textDerived, upper, upper), devKey, CheckOptions{Now: now})
	if len(c.Problems) != 1 || c.Problems[0].Code != ProblemWrongKey {
		t.Errorf("without group key: %+v", c.Problems)
	}
	c = CheckToken("SharedAccessSignature sr=a&sig=c2hvcnQ%3D&se=1700003600", devKey, CheckOptions{Now: now})
	if !c.Has(ProblemWrongKey) || !strings.Contains(c.Problems[0].Message, "32 bytes") {
		t.Errorf("short sig: %+v", c.Problems)
	}
}

func TestTokenCheckSummary(t *testing.T) {
	const key = "NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg="
	s, err := NewSAS(SASParams{IDScope: "0ne00000A0A", RegistrationID: "dev", Key: key, Expiry: 1700003600, KeyName: "registration"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		now  int64
		want string
	}{
		{1700000000, "valid default token, expires 2023-11-14T23:13:20Z (in 1h0m0s)"},
		{1700007200, "invalid default token, expired 2023-11-14T23:13:20Z (1h0m0s ago); expired: "},
	}
	for _, tt := range tests {
		got := CheckToken(s.Token, key, CheckOptions{Now: time.Unix(tt.now, 0)}).Summary()
		if !strings.HasPrefix(got, tt.want) {
			t.Errorf("Summary() = %q, want prefix %q", got, tt.want)
		}
	}
	if got := CheckToken("x", key, CheckOptions{}).Summary(); !strings.HasPrefix(got, "invalid; malformed: ") {
		t.Errorf("malformed summary %q", got)
	}
}
