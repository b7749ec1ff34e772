package main

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hiltest/hiltest/reference"
)

func TestSASCommandVectors(t *testing.T) {
	var cases []cliCase
	for _, x := range loadCLIVectors(t).SAS {
		args := []string{"sas", "--key", x.Key, "--expiry", strconv.FormatInt(x.Expiry, 10), "--policy", x.KeyName}
		if x.Resource != "" {
			args = append(args, "--resource", x.Resource)
		} else {
			args = append(args, "--id-scope", x.IDScope, "--registration-id", x.RegistrationID)
		}
		if x.Dialect != "" {
			args = append(args, "--dialect", x.Dialect)
		}
		cases = append(cases, cliCase{name: x.Dialect + "/" + x.Token[len(x.Token)-20:], args: args, code: 0,
			wantOut: true, stdout: x.Token + "\n"})
	}
	runCLICases(t, cases)
}

func TestSASCommand(t *testing.T) {
	const scope, id = "0ne00000A0A", "dev-1"
	v := loadCLIVectors(t)
	key := v.Derive[0].DeviceKey
	tok := func(d reference.Dialect, expiry int64, keyName string) string {
		s, err := reference.NewSAS(reference.SASParams{Dialect: d, IDScope: scope, RegistrationID: id, Key: key,
			Expiry: expiry, KeyName: keyName})
		if err != nil {
			t.Fatal(err)
		}
		return s.Token + "\n"
	}
	base := []string{"sas", "--id-scope", scope, "--registration-id", id, "--key", key}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }
	runCLICases(t, []cliCase{
		{name: "default dialect, default policy", args: with("--expiry", "1700000000"), code: 0, wantOut: true,
			stdout: tok(reference.DialectDefault, 1700000000, "registration")},
		{name: "azure-sdk-for-c has no skn by default", args: with("--expiry", "1700000000", "--dialect", "azure-sdk-for-c"),
			code: 0, wantOut: true, stdout: tok(reference.DialectAzureSDKForC, 1700000000, "")},
		{name: "azure-sdk-for-c with policy", args: with("--expiry", "1700000000", "--dialect", "azure-sdk-for-c", "--policy", "registration"),
			code: 0, wantOut: true, stdout: tok(reference.DialectAzureSDKForC, 1700000000, "registration")},
		{name: "azure-iot-sdk-c", args: with("--expiry", "1700000000", "--dialect", "azure-iot-sdk-c"),
			code: 0, wantOut: true, stdout: tok(reference.DialectAzureIoTSDKC, 1700000000, "registration")},
		{name: "empty policy drops skn", args: with("--expiry", "1700000000", "--policy", ""),
			code: 0, wantOut: true, stdout: tok(reference.DialectDefault, 1700000000, "")},
		{name: "ttl from now", args: with("--ttl", "1h", "--now", "1700000000"),
			code: 0, wantOut: true, stdout: tok(reference.DialectDefault, 1700003600, "registration")},
		{name: "verbose prints string to sign on stderr", args: with("--expiry", "1700000000", "--verbose"),
			code: 0, wantOut: true, stdout: tok(reference.DialectDefault, 1700000000, "registration"),
			errHas: strconv.Quote(reference.DialectDefault.Resource(scope, id) + "\n1700000000")},
		{name: "both expiry and ttl", args: with("--expiry", "1", "--ttl", "1h"), code: 2, noStdout: true, errHas: "exactly one"},
		{name: "neither expiry nor ttl", args: with(), code: 2, noStdout: true, errHas: "exactly one"},
		{name: "now without ttl", args: with("--expiry", "1", "--now", "1"), code: 2, noStdout: true, errHas: "--now"},
		{name: "negative ttl", args: with("--ttl", "-1h"), code: 2, noStdout: true, errHas: "not positive"},
		{name: "bad expiry", args: with("--expiry", "soon"), code: 2, noStdout: true, errHas: "invalid argument"},
		{name: "bad dialect", args: with("--expiry", "1", "--dialect", "python"), code: 2, noStdout: true, errHas: "unknown SAS dialect"},
		{name: "missing key", args: []string{"sas", "--id-scope", scope, "--registration-id", id, "--expiry", "1"},
			code: 2, noStdout: true, errHas: "--key is required"},
		{name: "missing scope", args: []string{"sas", "--registration-id", id, "--key", key, "--expiry", "1"},
			code: 2, noStdout: true, errHas: "--id-scope is required"},
		{name: "resource and scope", args: with("--expiry", "1", "--resource", "x"), code: 2, noStdout: true, errHas: "not both"},
		{name: "key not base64", args: []string{"sas", "--id-scope", scope, "--registration-id", id, "--key", "a-b_", "--expiry", "1"},
			code: 2, noStdout: true, errHas: "URL-safe"},
		{name: "bad registration id", args: []string{"sas", "--id-scope", scope, "--registration-id", "a/b", "--key", key, "--expiry", "1"},
			code: 2, noStdout: true, errHas: "'/' at position 2"},
	})
}

func TestSASCommandJSON(t *testing.T) {
	key := loadCLIVectors(t).Derive[0].DeviceKey
	var out, errb bytes.Buffer
	code := run([]string{"sas", "--resource", "0ne00000A0A/registrations/dev-1", "--key", key, "--expiry", "1700000000",
		"--dialect", "azure-iot-sdk-c", "--json"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var got sasJSON
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	want, err := reference.NewSAS(reference.SASParams{Dialect: reference.DialectAzureIoTSDKC,
		Resource: "0ne00000A0A/registrations/dev-1", Key: key, Expiry: 1700000000, KeyName: "registration"})
	if err != nil {
		t.Fatal(err)
	}
	if got != (sasJSON{Dialect: "azure-iot-sdk-c", Resource: want.Resource, EncodedResource: want.EncodedResource,
		StringToSign: want.StringToSign, Signature: want.Signature, Token: want.Token, Expiry: 1700000000, KeyName: "registration"}) {
		t.Errorf("JSON = %+v, want parts of %+v", got, want)
	}
	if !strings.Contains(out.String(), `"encoded_resource": "0ne00000A0A%2fregistrations%2fdev-1"`) {
		t.Errorf("JSON output:\n%s", out.String())
	}
}

func TestSASCheckCommand(t *testing.T) {
	v := loadCLIVectors(t)
	groupKey := v.Derive[0].GroupKey
	const scope, id = "0ne00000A0A", "dev-1"
	devKey, err := reference.DeriveDeviceKey(groupKey, id)
	if err != nil {
		t.Fatal(err)
	}
	const now = 1700000000
	mk := func(d reference.Dialect, key string, expiry int64) (string, string) {
		s, err := reference.NewSAS(reference.SASParams{Dialect: d, IDScope: scope, RegistrationID: id, Key: key,
			Expiry: expiry, KeyName: d.DefaultKeyName()})
		if err != nil {
			t.Fatal(err)
		}
		return s.Token, s.Signature
	}
	good, goodSig := mk(reference.DialectDefault, devKey, now+3600)
	iot, _ := mk(reference.DialectAzureIoTSDKC, devKey, now+3600)
	withGroup, _ := mk(reference.DialectDefault, groupKey, now+3600)
	expired, _ := mk(reference.DialectDefault, devKey, now-60)
	check := func(token, key string, extra ...string) []string {
		return append([]string{"sas", "check", "--token", token, "--key", key, "--now", strconv.Itoa(now)}, extra...)
	}
	where := []string{"--id-scope", scope, "--registration-id", id}
	secrets := []string{devKey, groupKey, goodSig}
	runCLICases(t, []cliCase{
		{name: "valid", args: check(good, devKey, where...), code: 0, notInBoth: secrets, wantOut: true,
			stdout: "token: valid\ndialect: default\nresource: 0ne00000A0A/registrations/dev-1\nsignature: verifies with the key\n" +
				"expires: " + time.Unix(now+3600, 0).UTC().Format(time.RFC3339) + " (1700003600, in 1h0m0s)\n"},
		{name: "pasted with a line break", args: check(good+"\n", devKey, where...), code: 0},
		{name: "valid legacy C SDK token", args: check(iot, devKey, where...), code: 0, notInBoth: secrets},
		{name: "valid token, other dialect declared", args: check(iot, devKey, append(where, "--dialect", "default")...), code: 1,
			errHas: "dialect-mismatch", notInBoth: secrets},
		{name: "group key used", args: check(withGroup, devKey, append(where, "--group-key", groupKey)...), code: 1,
			errHas: "group-key-used", notInBoth: secrets},
		{name: "wrong key", args: check(good, "YWJjZGVmZ2g=", where...), code: 1, errHas: "wrong-key", notInBoth: secrets},
		{name: "resource mismatch", args: check(good, devKey, "--id-scope", scope, "--registration-id", "dev-2"), code: 1,
			errHas: "resource-mismatch", notInBoth: secrets},
		{name: "expired", args: check(expired, devKey, where...), code: 1, errHas: "expired", notInBoth: secrets},
		{name: "malformed", args: check("SharedAccessSignature sr=x", devKey), code: 1, errHas: "malformed"},
		{name: "key not base64", args: check(good, "###"), code: 2, noStdout: true, errHas: "--key"},
		{name: "group key not base64", args: check(good, devKey, "--group-key", "x"), code: 2, noStdout: true, errHas: "--group-key"},
		{name: "scope without id", args: check(good, devKey, "--id-scope", scope), code: 2, noStdout: true, errHas: "both"},
		{name: "missing token", args: []string{"sas", "check", "--key", devKey}, code: 2, noStdout: true, errHas: "--token is required"},
		{name: "bad dialect", args: check(good, devKey, "--dialect", "x"), code: 2, noStdout: true, errHas: "dialect"},
	})
	// The problem lines name what is wrong.
	var out, errb bytes.Buffer
	run(check(withGroup, devKey, append(where, "--group-key", groupKey)...), &out, &errb)
	if !strings.Contains(out.String(), "token: NOT valid") || !strings.Contains(out.String(), "problem: group-key-used: ") {
		t.Errorf("output:\n%s", out.String())
	}
}
