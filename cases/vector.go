package cases

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/hiltest/hiltest/harness"
	"github.com/hiltest/hiltest/protocol"
	"github.com/hiltest/hiltest/reference"
)

// ttlSlack is how far (seconds) a board's clock-based expiry may be from
// the bench's clock + ttl: the time a request takes on the serial line.
const ttlSlack = 5

// toCase turns a vector into a case.
func (v vector) toCase() harness.Case {
	c := harness.Case{ID: v.ID, Title: v.Title, Optional: v.Optional, Timeout: v.Timeout}
	switch v.Kind {
	case KindDerive:
		c.Requires = []string{protocol.CapDerive}
		c.Run = v.runDerive
	case KindSAS:
		c.Requires = []string{protocol.CapSAS}
		c.Run = v.runSAS
	case KindRequest:
		c.Requires = []string{protocol.CapDPSRequest}
		if v.Host != "" || v.Port != 0 || v.APIVersion != "" {
			c.Requires = append(c.Requires, protocol.CapDPSConfig)
		}
		c.Run = v.runRequest
	}
	if v.TTL != 0 {
		c.Requires = append(c.Requires, protocol.CapTime)
	}
	c.Requires = withCaps(c.Requires, v.Requires...)
	return c
}

// extra returns the vector's extra arguments.
func (v vector) extra() []protocol.Arg {
	var out []protocol.Arg
	for _, a := range v.ExtraArgs {
		out = append(out, protocol.String(a[0], a[1]))
	}
	return out
}

// optional returns the arguments (key, value pairs) the vector sets.
func (v vector) optional(kv ...string) []protocol.Arg {
	var out []protocol.Arg
	for i := 0; i+1 < len(kv); i += 2 {
		if v.set[kv[i]] {
			out = append(out, protocol.String(kv[i], kv[i+1]))
		}
	}
	return out
}

// answered handles expect_error and accept_error: it reports whether the
// case is over (the board answered ERR, as expected or not).
func (v vector) answered(t *harness.T, verb string, f *protocol.Frame, remote *protocol.RemoteError) bool {
	if v.ExpectError != "" {
		checkError(t, verb, f, remote, v.ExpectError, v.ErrorArg)
		return true
	}
	if remote == nil {
		return false
	}
	if slices.Contains(v.AcceptError, remote.Code) {
		t.Logf("%s answered ERR %s%s (accepted): %s", verb, remote.Code, errArg(remote), remote.Message)
		return true
	}
	t.Fail(harness.Failure{Message: fmt.Sprintf("%s answered ERR %s: %s%s", verb, remote.Code, remote.Message, errArg(remote)),
		Diagnosis: "the board refused valid inputs"})
	return true
}

func (v vector) runDerive(ctx context.Context, t *harness.T) {
	var args []protocol.Arg
	if v.set["group_key"] {
		args = append(args, protocol.String("group_key", v.GroupKey))
	}
	if v.set["reg_id"] {
		args = append(args, protocol.String("reg_id", v.RegID))
	}
	args = append(args, v.extra()...)
	f, remote, ok := call(ctx, t, protocol.VerbDerive, args...)
	if !ok || v.answered(t, protocol.VerbDerive, f, remote) {
		return
	}
	if !requireResults(t, f, "device_key") {
		return
	}
	got := f.String("device_key")
	t.Output("device_key", got)
	want, err := reference.DeriveDeviceKey(v.GroupKey, v.RegID)
	if err != nil {
		t.Error(fmt.Errorf("reference: %w", err))
		return
	}
	if pub, ok := v.Expect["device_key"]; ok && pub != want {
		compare(t, "reference device key (published vector "+v.Source+")", pub, want, true,
			"reference/ disagrees with the published known answer: fix reference/")
	}
	compare(t, "device key", want, got, true, diagnoseDeviceKey(v.GroupKey, v.RegID, got))
}

// sasInputs returns what the SAS or request of this vector should be made
// from, in dialect d, with expiry se.
func (v vector) sasInputs(d reference.Dialect, from string, key string, se int64) tokenInputs {
	kn := d.DefaultKeyName()
	if v.Policy != nil {
		kn = *v.Policy
	}
	return tokenInputs{Dialect: d, DialectFrom: from, IDScope: v.IDScope, RegID: v.RegID, Resource: v.Resource,
		Key: key, GroupKey: v.GroupKey, Expiry: se, FromClock: v.TTL != 0, TTL: v.TTL, KeyName: kn}
}

// deviceKey is the key the vector's token must be signed with.
func (v vector) deviceKey() (string, error) {
	if v.GroupKey == "" {
		return v.Key, nil
	}
	return reference.DeriveDeviceKey(v.GroupKey, v.RegID)
}

// prepare checks the board's dialect against the vector, sets the clock
// for ttl vectors, and returns the dialect and the key.
func (v vector) prepare(ctx context.Context, t *harness.T) (d reference.Dialect, from, key string, clock int64, ok bool) {
	d, from, err := boardDialect(t)
	if err != nil {
		t.Error(err)
		return "", "", "", 0, false
	}
	if len(v.Dialects) > 0 && !slices.Contains(v.Dialects, d) {
		t.Skip(fmt.Sprintf("the vector is for %s; %s %s", joinDialects(v.Dialects), from, d))
		return "", "", "", 0, false
	}
	key = v.Key
	if v.ExpectError == "" {
		if key, err = v.deviceKey(); err != nil {
			t.Error(fmt.Errorf("reference: %w", err))
			return "", "", "", 0, false
		}
	}
	if v.TTL != 0 {
		if clock, ok = setClock(ctx, t); !ok {
			return "", "", "", 0, false
		}
	}
	return d, from, key, clock, true
}

// expiryArgs are the expiry or ttl arguments.
func (v vector) expiryArgs() []protocol.Arg {
	if v.Expiry != nil {
		return []protocol.Arg{protocol.Int("expiry", *v.Expiry)}
	}
	if v.TTL != 0 {
		return []protocol.Arg{protocol.Int("ttl", v.TTL)}
	}
	return nil
}

// expectedExpiry is the se the board should have used: the vector's
// expiry, or for a ttl the board's own se when it lies within the window
// [clock+ttl, now+ttl+slack], else clock+ttl.
func (v vector) expectedExpiry(t *harness.T, clock int64, boardSE string) int64 {
	if v.Expiry != nil {
		return *v.Expiry
	}
	lo, hi := clock+v.TTL, now(t).Unix()+v.TTL+ttlSlack
	if se, err := strconv.ParseInt(boardSE, 10, 64); err == nil && se >= lo-ttlSlack && se <= hi {
		return se
	}
	return lo
}

func (v vector) runSAS(ctx context.Context, t *harness.T) {
	d, from, key, clock, ok := v.prepare(ctx, t)
	if !ok {
		return
	}
	var args []protocol.Arg
	if v.Resource != "" {
		args = append(args, protocol.String("resource", v.Resource))
	} else {
		args = append(args, v.optional("id_scope", v.IDScope, "reg_id", v.RegID)...)
	}
	args = append(args, protocol.String("key", key))
	args = append(args, v.expiryArgs()...)
	if v.Policy != nil {
		args = append(args, protocol.String("policy", *v.Policy))
	}
	args = append(args, v.extra()...)
	f, remote, ok := call(ctx, t, protocol.VerbSAS, args...)
	if !ok || v.answered(t, protocol.VerbSAS, f, remote) {
		return
	}
	if !requireResults(t, f, "sr", "sts", "sig", "se", "token") {
		return
	}
	got := map[string]string{}
	for _, k := range []string{"sr", "sts", "sig", "se", "token"} {
		got[k] = f.String(k)
		t.Output(k, got[k])
	}
	in := v.sasInputs(d, from, key, v.expectedExpiry(t, clock, got["se"]))
	ref, err := referenceSAS(in)
	if err != nil {
		t.Error(fmt.Errorf("reference: %w", err))
		return
	}
	want := sasParts(ref)
	if len(v.Expect) > 0 {
		pubIn := in
		pubIn.Dialect = v.ExpectDialect
		pubIn.KeyName = v.ExpectDialect.DefaultKeyName()
		if v.Policy != nil {
			pubIn.KeyName = *v.Policy
		}
		pubRef, err := referenceSAS(pubIn)
		if err != nil {
			t.Error(fmt.Errorf("reference: %w", err))
			return
		}
		pubWant := sasParts(pubRef)
		for _, k := range []string{"sr", "sts", "sig", "se", "token"} {
			if pub, ok := v.Expect[k]; ok {
				compare(t, fmt.Sprintf("reference %s (published vector %s, %s)", k, v.Source, v.ExpectDialect), pub, pubWant[k],
					k == "sig" || k == "token", "reference/ disagrees with the published known answer: fix reference/")
			}
		}
	}
	cause := diagnoseToken(in, got["token"])
	first := true
	for _, k := range []string{"token", "sr", "sts", "sig", "se"} {
		diag := ""
		if first {
			diag = cause
		}
		if compare(t, "SAS "+k, want[k], got[k], k == "sig" || k == "token", diag) != nil {
			first = false
		}
	}
	// A token that matches while the parts do not (or the reverse) is an
	// inconsistent answer: sts must be sr "\n" se.
	if got["sts"] != got["sr"]+"\n"+got["se"] {
		t.Fail(harness.Failure{Message: "SAS sts is not sr + \"\\n\" + se",
			Diagnosis: "the string-to-sign the board reports is not the one its token signs"})
	}
}

// sasParts are the results a SAS answer must carry.
func sasParts(s reference.SAS) map[string]string {
	return map[string]string{"sr": s.EncodedResource, "sts": s.StringToSign, "sig": s.Signature,
		"se": strconv.FormatInt(s.Expiry, 10), "token": s.Token}
}

// dpsConfig is where the board sends DPS requests.
type dpsConfig struct {
	Host       string
	Port       int
	APIVersion string
}

// endpoint is the Host header value: host, plus ":port" when not 443.
func (c dpsConfig) endpoint() string {
	if c.Port == 0 || c.Port == 443 {
		return c.Host
	}
	return c.Host + ":" + strconv.Itoa(c.Port)
}

// configureDPS sends DPS.CONFIG with the given (non-zero) settings and
// returns the configuration the board reports. Without the dps.config
// capability it returns the protocol defaults.
func configureDPS(ctx context.Context, t *harness.T, want dpsConfig) (dpsConfig, bool) {
	if !t.Board.Info().HasCap(protocol.CapDPSConfig) {
		return dpsConfig{Host: reference.DefaultEndpoint, Port: 443, APIVersion: reference.DefaultAPIVersion}, true
	}
	var args []protocol.Arg
	if want.Host != "" {
		args = append(args, protocol.String("host", want.Host))
	}
	if want.Port != 0 {
		args = append(args, protocol.Int("port", int64(want.Port)))
	}
	if want.APIVersion != "" {
		args = append(args, protocol.String("api_version", want.APIVersion))
	}
	f, ok := mustCall(ctx, t, protocol.VerbDPSConfig, args...)
	if !ok || !requireResults(t, f, "host", "port", "api_version") {
		return dpsConfig{}, false
	}
	port, err := f.Int("port")
	if err != nil {
		t.Fail(harness.Failure{Message: err.Error()})
		return dpsConfig{}, false
	}
	got := dpsConfig{Host: f.String("host"), Port: int(port), APIVersion: f.String("api_version")}
	if (want.Host != "" && got.Host != want.Host) || (want.Port != 0 && got.Port != want.Port) ||
		(want.APIVersion != "" && got.APIVersion != want.APIVersion) {
		t.Fail(harness.Failure{Message: fmt.Sprintf("DPS.CONFIG answered host=%s port=%d api_version=%s, asked for %+v",
			got.Host, got.Port, got.APIVersion, want), Diagnosis: "DPS.CONFIG did not apply the settings"})
		return dpsConfig{}, false
	}
	return got, true
}

func (v vector) runRequest(ctx context.Context, t *harness.T) {
	d, from, key, clock, ok := v.prepare(ctx, t)
	if !ok {
		return
	}
	cfg, ok := configureDPS(ctx, t, dpsConfig{Host: v.Host, Port: v.Port, APIVersion: v.APIVersion})
	if !ok {
		return
	}
	args := v.optional("id_scope", v.IDScope, "reg_id", v.RegID)
	if v.GroupKey != "" {
		args = append(args, protocol.String("group_key", v.GroupKey))
	} else {
		args = append(args, protocol.String("key", v.Key))
	}
	args = append(args, v.expiryArgs()...)
	if v.Payload != "" {
		args = append(args, protocol.String("payload", v.Payload))
	}
	args = append(args, v.extra()...)
	f, remote, ok := call(ctx, t, protocol.VerbDPSRequest, args...)
	if !ok || v.answered(t, protocol.VerbDPSRequest, f, remote) {
		return
	}
	if !requireResults(t, f, "request") {
		return
	}
	raw := f.String("request")
	t.Output("request", raw)
	boardSE := ""
	if got, err := reference.ParseRequest([]byte(raw)); err == nil {
		if a, ok := got.Header("Authorization"); ok {
			if tok, err := reference.ParseToken(a); err == nil {
				boardSE = tok.SE
			}
		}
	}
	in := v.sasInputs(d, from, key, v.expectedExpiry(t, clock, boardSE))
	in.KeyName = d.DefaultKeyName() // DPS.REQUEST uses the firmware's default policy
	compareRequest(t, "DPS.REQUEST", []byte(raw), in, cfg, json.RawMessage(v.Payload))
}

// compareRequest compares a board's register request with the reference's
// in canonical form; in says how its token should have been made.
func compareRequest(t *harness.T, what string, raw []byte, in tokenInputs, cfg dpsConfig, payload json.RawMessage) {
	ref, err := referenceSAS(in)
	if err != nil {
		t.Error(fmt.Errorf("reference: %w", err))
		return
	}
	if len(payload) == 0 {
		payload = nil
	}
	wantRaw, err := reference.RegisterRequestBytes(reference.RequestParams{Endpoint: cfg.endpoint(), APIVersion: cfg.APIVersion,
		IDScope: in.IDScope, RegistrationID: in.RegID, Token: ref.Token, Payload: payload})
	if err != nil {
		t.Error(fmt.Errorf("reference: %w", err))
		return
	}
	want, err := reference.ParseRequest(wantRaw)
	if err != nil {
		t.Error(fmt.Errorf("reference: %w", err))
		return
	}
	got, err := reference.ParseRequest(raw)
	if err != nil {
		t.Fail(harness.Failure{Message: what + ": the board's request does not parse: " + err.Error(),
			Diagnosis: "malformed HTTP request", Divergence: reference.FirstDivergence(wantRaw, raw), Secret: true})
		return
	}
	wb, gb := want.Bytes(), got.Bytes()
	d := reference.FirstDivergence(wb, gb)
	if d == nil {
		return
	}
	t.Fail(harness.Failure{Message: what + " request " + d.String(), Diagnosis: diagnoseRequest(want, got, in), Divergence: d,
		Secret: nearAuthorization(wb, d.Offset) || nearAuthorization(gb, d.Offset)})
}

// nearAuthorization reports whether the divergence view around offset
// (reference.FirstDivergence shows a window of bytes each side) reaches
// into the Authorization header line, which holds the token.
func nearAuthorization(b []byte, offset int) bool {
	const window = 32 // at least the window reference.FirstDivergence shows
	start := bytes.Index(b, []byte("\r\nAuthorization:"))
	if start < 0 {
		return false
	}
	end := start + 2 + bytes.Index(b[start+2:], []byte("\r\n"))
	return offset+window >= start && offset-window < end
}
