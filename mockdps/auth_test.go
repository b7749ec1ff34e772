package mockdps

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hiltest/hiltest/reference"
)

// sigWithPlus finds an expiry whose signature contains '+', so that an
// unencoded sig is actually damaged by form decoding.
func sigWithPlus(t *testing.T, p reference.SASParams) reference.SAS {
	t.Helper()
	base := testNow.Add(time.Hour).Unix()
	for i := range int64(500) {
		p.Expiry = base + i
		s := sas(t, p)
		if strings.Contains(s.Signature, "+") {
			return s
		}
	}
	t.Fatal("no signature with '+' in 500 tries")
	return reference.SAS{}
}

// sasToken gives a table test the token that sas builds from p.
func sasToken(p reference.SASParams) func(t *testing.T) string {
	return func(t *testing.T) string { return sas(t, p).Token }
}

func TestAuthDiagnoses(t *testing.T) {
	const grpDev = "grp-auth-dev"
	devKey := derive(t, DemoGroupPrimaryKey, grpDev)
	exp := testNow.Add(time.Hour).Unix()
	// Key derived with the group key's base64 text as HMAC key.
	badDerived, err := reference.Sign(textKey(DemoGroupPrimaryKey), grpDev)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		regID string
		token func(t *testing.T) string // "" with noAuth
		want  Cause
		// inExpected/inReceived must appear in the diagnosis.
		inExpected, inReceived string
	}{
		{name: "missing authorization", regID: DemoDevice1, want: CauseMissingAuthorization},
		{name: "malformed token", regID: DemoDevice1, want: CauseMalformedToken,
			token: func(t *testing.T) string { return "SharedAccessSignature sr=abc&sig=def" }},
		{name: "no prefix", regID: DemoDevice1, want: CauseMalformedToken,
			token: func(t *testing.T) string {
				return strings.TrimPrefix(sas(t, reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey}).Token, "SharedAccessSignature ")
			}},
		{name: "group key used", regID: grpDev, want: CauseGroupKeyUsed,
			token: sasToken(reference.SASParams{RegistrationID: grpDev, Key: DemoGroupPrimaryKey})},
		{name: "group key not decoded, signing directly", regID: grpDev, want: CauseGroupKeyNotDecoded,
			token: sasToken(reference.SASParams{RegistrationID: grpDev, Key: textKey(DemoGroupPrimaryKey)})},
		{name: "group key not decoded for derivation", regID: grpDev, want: CauseGroupKeyNotDecoded,
			token: sasToken(reference.SASParams{RegistrationID: grpDev, Key: badDerived})},
		{name: "group key not decoded for derivation nor signing", regID: grpDev, want: CauseGroupKeyNotDecoded,
			token: sasToken(reference.SASParams{RegistrationID: grpDev, Key: textKey(badDerived)})},
		{name: "derived key not decoded", regID: grpDev, want: CauseKeyNotDecoded,
			token: sasToken(reference.SASParams{RegistrationID: grpDev, Key: textKey(devKey)})},
		{name: "individual key not decoded", regID: DemoDevice1, want: CauseKeyNotDecoded,
			token: sasToken(reference.SASParams{RegistrationID: DemoDevice1, Key: textKey(DemoDevice1SecondaryKey)})},
		{name: "sr not encoded", regID: DemoDevice1, want: CauseSRNotEncoded, inReceived: "sr=" + DemoIDScope + "/registrations/",
			token: func(t *testing.T) string {
				raw := DemoIDScope + "/registrations/" + DemoDevice1
				sig, _ := reference.Sign(DemoDevice1PrimaryKey, fmt.Sprintf("%s\n%d", raw, exp))
				return reference.FormatToken(reference.DialectDefault, raw, sig, exp, "registration")
			}},
		{name: "sr not valid percent-encoding (original bug report)", regID: DemoDevice1, want: CauseSRNotEncoded,
			token: func(t *testing.T) string {
				return reference.FormatToken(reference.DialectDefault, DemoIDScope+"%2Fregistrations%xx-"+DemoDevice1, "c2ln", exp, "registration")
			}},
		{name: "signed %2F sent %2f", regID: DemoDevice1, want: CauseSREncodingMismatch, inReceived: "%2F",
			token: func(t *testing.T) string {
				s := sas(t, reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey})
				return strings.Replace(s.Token, "sr="+s.EncodedResource, "sr="+strings.ReplaceAll(s.EncodedResource, "%2F", "%2f"), 1)
			}},
		{name: "signed the decoded resource", regID: DemoDevice1, want: CauseSREncodingMismatch, inReceived: "the decoded resource",
			token: func(t *testing.T) string {
				res := reference.RawResource(DemoIDScope, DemoDevice1)
				sig, _ := reference.Sign(DemoDevice1PrimaryKey, fmt.Sprintf("%s\n%d", res, exp))
				return reference.FormatToken(reference.DialectDefault, reference.DialectDefault.Resource(DemoIDScope, DemoDevice1), sig, exp, "registration")
			}},
		{name: "resource names another registration", regID: DemoDevice1, want: CauseResourceMismatch, inReceived: DemoDevice2,
			token: sasToken(reference.SASParams{RegistrationID: DemoDevice2, Key: DemoDevice1PrimaryKey})},
		{name: "resource names another scope", regID: DemoDevice1, want: CauseResourceMismatch, inReceived: "0ne00OTHER1",
			token: sasToken(reference.SASParams{IDScope: "0ne00OTHER1", RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey})},
		{name: "expired", regID: DemoDevice1, want: CauseExpired, inReceived: fmt.Sprint(testNow.Add(-90 * time.Second).Unix()),
			token: sasToken(reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey, Expiry: testNow.Add(-90 * time.Second).Unix()})},
		{name: "clock not set", regID: DemoDevice1, want: CauseClockNotSet,
			token: sasToken(reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey, Expiry: 3600})},
		{name: "expiry too far", regID: DemoDevice1, want: CauseExpiryTooFar,
			token: sasToken(reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey, Expiry: testNow.AddDate(5, 0, 0).Unix()})},
		{name: "expiry centuries ahead", regID: DemoDevice1, want: CauseExpiryTooFar, inReceived: "se=9223372036854775807",
			token: func(t *testing.T) string {
				return strings.Replace(sas(t, reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey}).Token,
					fmt.Sprintf("se=%d", exp), "se=9223372036854775807", 1)
			}},
		{name: "wrong skn", regID: DemoDevice1, want: CauseWrongSKN, inReceived: "skn=iothubowner",
			token: sasToken(reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey, KeyName: "iothubowner"})},
		{name: "sig not encoded", regID: DemoDevice1, want: CauseSigNotEncoded,
			token: func(t *testing.T) string {
				s := sigWithPlus(t, reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey})
				return reference.TokenPrefix + "sr=" + s.EncodedResource + "&sig=" + s.Signature + fmt.Sprintf("&se=%d&skn=registration", s.Expiry)
			}},
		{name: "wrong key individual", regID: DemoDevice1, want: CauseWrongKey, inExpected: `individual enrollment "demo-device-1"`,
			token: sasToken(reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice2PrimaryKey})},
		{name: "wrong key group", regID: grpDev, want: CauseWrongKey, inExpected: `enrollment group "demo-group"`,
			token: func(t *testing.T) string {
				return sas(t, reference.SASParams{RegistrationID: grpDev, Key: derive(t, DemoDevice1PrimaryKey, grpDev)}).Token
			}},
	}
	s := NewTestServer(t, Options{Now: newClock().Now})
	sx := NewTestServer(t, Options{Now: newClock().Now, Explain: true})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hdr [][2]string
			var tok string
			if tc.token != nil {
				tok = tc.token(t)
				hdr = append(hdr, [2]string{"Authorization", tok})
			}
			hdr = append(hdr, [2]string{"Content-Type", "application/json"})
			body := `{"registrationId":"` + tc.regID + `"}`
			uri := "/" + DemoIDScope + "/registrations/" + tc.regID + "/register?api-version=2021-06-01"
			for _, srv := range []*Server{s, sx} {
				r := dialRaw(t, srv).do(rawRequest(srv.Host(), "PUT", uri, hdr, body))
				// Public answer: exactly the service's, no hint.
				if r.Status != http.StatusUnauthorized || r.JSON["errorCode"] != float64(401002) || r.JSON["message"] != "Unauthorized" ||
					r.Header.Get("x-ms-error-code") != "401002" {
					t.Fatalf("response %d %s", r.Status, r.Body)
				}
				for _, k := range []string{"trackingId", "timestampUtc"} {
					if v, _ := r.JSON[k].(string); v == "" {
						t.Errorf("error body lacks %s: %s", k, r.Body)
					}
				}
				d := lastDiag(t, srv)
				if d.Cause != tc.want {
					t.Fatalf("cause %q, want %q: %s", d.Cause, tc.want, d.String())
				}
				if d.Status != 401 || d.RegistrationID != tc.regID || d.Message == "" {
					t.Errorf("diagnosis fields: %+v", d)
				}
				if !strings.Contains(d.Expected, tc.inExpected) || !strings.Contains(d.Received, tc.inReceived) {
					t.Errorf("diagnosis %s: want expected ∋ %q, received ∋ %q", d.String(), tc.inExpected, tc.inReceived)
				}
				if sig := sigOf(tok); len(sig) > 8 && strings.Contains(d.String(), sig) {
					t.Errorf("diagnosis leaks the signature: %s", d.String())
				}
				expl := r.Header.Get("x-hiltest-diagnosis")
				if srv == s && expl != "" {
					t.Errorf("diagnosis header without Explain: %q", expl)
				}
				if srv == sx && !strings.HasPrefix(expl, string(tc.want)+": ") {
					t.Errorf("x-hiltest-diagnosis = %q", expl)
				}
				reqs := srv.Requests()
				if rq := reqs[len(reqs)-1]; rq.Diagnosis == nil || rq.Diagnosis.Cause != tc.want {
					t.Errorf("captured request lacks the diagnosis: %+v", rq.Diagnosis)
				}
			}
			// The same token through the reference client: the service's
			// 401002, and the same diagnosis.
			if tok == "" || !strings.HasPrefix(tok, reference.TokenPrefix) {
				return
			}
			cl, err := reference.NewClient(reference.ClientOptions{Endpoint: s.Host(), RootCAs: s.CertPool()})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			_, err = cl.Register(t.Context(), reference.RegisterParams{IDScope: DemoIDScope, RegistrationID: tc.regID, Token: tok})
			var se *reference.ServiceError
			if !errorsAs(err, &se) || se.StatusCode != 401 || se.ErrorCode != 401002 || se.Message != "Unauthorized" {
				t.Fatalf("reference client: %v", err)
			}
			if d := lastDiag(t, s); d.Cause != tc.want {
				t.Errorf("reference client: cause %q, want %q", d.Cause, tc.want)
			}
		})
	}
}

func sigOf(tok string) string {
	_, after, ok := strings.Cut(tok, "sig=")
	if !ok {
		return ""
	}
	sig, _, _ := strings.Cut(after, "&")
	return sig
}

// Every dialect real SDKs emit is accepted, with or without skn, in any
// field order, for individual and group enrollments.
func TestDialectsAccepted(t *testing.T) {
	s := NewTestServer(t, Options{Now: newClock().Now})
	c := dialRaw(t, s)
	const grpDev = "Grp.Dialect_dev:01"
	ids := map[string]string{DemoDevice1: DemoDevice1PrimaryKey, grpDev: derive(t, DemoGroupPrimaryKey, grpDev)}
	for id, key := range ids {
		for _, d := range reference.Dialects() {
			for _, skn := range []string{"", "registration"} {
				st := sas(t, reference.SASParams{Dialect: d, RegistrationID: id, Key: key, KeyName: skn})
				toks := []string{st.Token}
				if skn == "" {
					st.Token = strings.Replace(st.Token, "&skn=registration", "", 1)
					toks = []string{st.Token}
				}
				// Same fields, another order (the docs' order: sig, se, skn, sr).
				sig := sigOf(st.Token)
				re := reference.TokenPrefix + fmt.Sprintf("sig=%s&se=%d", sig, st.Expiry)
				if strings.Contains(st.Token, "skn=") {
					re += "&skn=registration"
				}
				toks = append(toks, re+"&sr="+st.EncodedResource)
				for _, tok := range toks {
					r := c.do(registerBytes(t, s, id, tok))
					if r.Status != 202 {
						t.Errorf("%s %s skn=%q: %d (%v)", id, d, skn, r.Status, s.Diagnoses())
					}
				}
			}
		}
	}
	// A sig sent without URL-encoding still verifies when it holds no '+':
	// '/' and '=' decode to themselves.
	for i := range int64(500) {
		st := sas(t, reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey, Expiry: testNow.Add(time.Hour).Unix() + i})
		if strings.Contains(st.Signature, "+") || !strings.ContainsAny(st.Signature, "/=") {
			continue
		}
		tok := reference.TokenPrefix + "sr=" + st.EncodedResource + "&sig=" + st.Signature + fmt.Sprintf("&se=%d&skn=registration", st.Expiry)
		if r := c.do(registerBytes(t, s, DemoDevice1, tok)); r.Status != 202 {
			t.Errorf("raw sig without '+': %d (%v)", r.Status, s.Diagnoses())
		}
		break
	}
	// Registration ids are case-insensitive in sr.
	st := sas(t, reference.SASParams{RegistrationID: strings.ToUpper(DemoDevice1), Key: DemoDevice1PrimaryKey})
	if r := c.do(registerBytes(t, s, DemoDevice1, st.Token)); r.Status != 202 {
		t.Errorf("upper-case registration id in sr: %d", r.Status)
	}
}

func TestUnknownRegistration(t *testing.T) {
	e := DemoEnrollments()
	e.Groups = nil
	s := NewTestServer(t, Options{Now: newClock().Now, Enrollments: e})
	tok := sas(t, reference.SASParams{RegistrationID: "nobody", Key: DemoDevice1PrimaryKey}).Token
	r := dialRaw(t, s).do(registerBytes(t, s, "nobody", tok))
	if r.Status != 401 || r.JSON["errorCode"] != float64(401002) {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	if d := lastDiag(t, s); d.Cause != CauseUnknownRegistration {
		t.Errorf("cause %s", d.Cause)
	}
}

func TestClockSkew(t *testing.T) {
	s := NewTestServer(t, Options{Now: newClock().Now, ClockSkew: 2 * time.Minute})
	tok := sas(t, reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey, Expiry: testNow.Add(-time.Minute).Unix()}).Token
	if r := dialRaw(t, s).do(registerBytes(t, s, DemoDevice1, tok)); r.Status != 202 {
		t.Fatalf("token 1 min past se with 2 min skew: %d (%v)", r.Status, s.Diagnoses())
	}
}

func TestExpiryMessages(t *testing.T) {
	now := testNow.Unix()
	tests := []struct {
		se        int64
		skew      time.Duration
		want      Cause
		inMessage string
	}{
		{now - 90, 0, CauseExpired, "expired 1m30s ago"},
		{now - 3*86400, 0, CauseExpired, "expired 3 days ago"},
		{now, 0, CauseExpired, "expired 0s ago"},
		{now - 90, 2 * time.Minute, "", ""},
		{now + 1, 0, "", ""},
		{3600, 0, CauseClockNotSet, "clock was not set"},
		{now + 2*365*86400, 0, CauseExpiryTooFar, "730 days from now"},
		{1 << 62, 0, CauseExpiryTooFar, "more than 100 years"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.se-now), func(t *testing.T) {
			d := checkExpiry(tc.se, authInput{Now: testNow, Skew: tc.skew, MaxLifetime: DefaultMaxTokenLifetime})
			switch {
			case tc.want == "" && d != nil:
				t.Fatalf("rejected: %+v", d)
			case tc.want != "" && (d == nil || d.Cause != tc.want || !strings.Contains(d.Message, tc.inMessage)):
				t.Fatalf("got %+v, want %s with %q", d, tc.want, tc.inMessage)
			}
		})
	}
}
