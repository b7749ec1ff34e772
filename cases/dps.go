package cases

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hiltest/hiltest/harness"
	"github.com/hiltest/hiltest/mockdps"
	"github.com/hiltest/hiltest/protocol"
	"github.com/hiltest/hiltest/reference"
)

// registerTTL is the token lifetime boards are asked to use for DPS.REGISTER.
const registerTTL = 3600

// registerTimeout is the DPS.REGISTER timeout argument (seconds).
const registerTimeout = 60

// retryAfterTolerance: a poll this much earlier than the Retry-After of
// the previous answer still respects it. The mock DPS stamps each request
// when it starts serving it, before its answer leaves, so a board that
// waits Retry-After from when it got the answer never looks early; the
// tolerance only absorbs timer and scheduling granularity.
const retryAfterTolerance = 50 * time.Millisecond

var dpsCaps = []string{protocol.CapDPSRegister, protocol.CapDPSConfig, protocol.CapTLSCA, protocol.CapTime}

// dpsCases are the end-to-end DPS registration cases.
func dpsCases() []harness.Case {
	c := func(id, title string, run func(context.Context, *harness.T)) harness.Case {
		return harness.Case{ID: id, Title: title, Requires: dpsCaps, Timeout: 3 * registerTimeout * time.Second, Run: run}
	}
	return []harness.Case{
		c("dps/register/individual-primary", "Every enabled individual enrollment registers with its primary key: assigned, expected hub and device id; captured request matches the reference", runIndividualPrimary),
		c("dps/register/individual-secondary", "An individual enrollment registers with its secondary key", runIndividualSecondary),
		c("dps/register/group-primary", "A group member registers with the primary group key (device key derived on the board)", runGroupPrimary),
		c("dps/register/group-secondary", "A group member registers with the secondary group key", runGroupSecondary),
		c("dps/register/disabled-individual", "A disabled individual enrollment is not assigned (status disabled)", runDisabledIndividual),
		c("dps/register/disabled-group", "A member of a disabled group is not assigned (status disabled)", runDisabledGroup),
		c("dps/register/wrong-key", "A wrong key fails with 401 / 401002 and the mock DPS names the cause", runWrongKey),
		c("dps/register/retry-after", "Polling waits the Retry-After the DPS sent", runRetryAfter),
	}
}

// registration is one DPS.REGISTER to make.
type registration struct {
	RegID    string
	Key      string // device key, or
	GroupKey string // group key (the board derives)
}

// registerResult is the board's DPS.REGISTER answer and what the mock saw.
type registerResult struct {
	Start                     time.Time
	Op, Status, Hub, DeviceID string
	HTTP, RetryAfter          []string
	ErrorCode, ErrorMsg       string
	Config                    dpsConfig
	Dialect                   reference.Dialect
	DialectFrom               string
	Clock                     int64
	Registration              registration
	Nonce                     string          // in the payload: tells this board's register request from others'
	Payload                   json.RawMessage // the payload sent
	// Since is the mock DPS's request count (mockdps.Server.RequestCount)
	// when the registration started: its requests are numbered Since or
	// later. 0 without a mock.
	Since int
}

// dpsReady checks the bench has a DPS and points the board at it: trust
// anchor, endpoint, clock.
func dpsReady(ctx context.Context, t *harness.T) (dpsConfig, int64, bool) {
	if t.Env == nil || t.Env.DPS.Host == "" {
		t.Skip("the bench has no DPS")
		return dpsConfig{}, 0, false
	}
	if t.Env.DPS.Enrollments == nil {
		t.Skip("the bench's DPS enrollments (keys) are not known")
		return dpsConfig{}, 0, false
	}
	if len(t.Env.DPS.CAPEM) > 0 {
		if _, ok := mustCall(ctx, t, protocol.VerbTLSCA, protocol.Bytes("pem", t.Env.DPS.CAPEM)); !ok {
			return dpsConfig{}, 0, false
		}
	}
	port := t.Env.DPS.Port
	if port == 0 {
		port = 443
	}
	cfg, ok := configureDPS(ctx, t, dpsConfig{Host: t.Env.DPS.Host, Port: port, APIVersion: t.Env.DPS.APIVersion})
	if !ok {
		return dpsConfig{}, 0, false
	}
	clock, ok := setClock(ctx, t)
	return cfg, clock, ok
}

// idScope is the bench DPS's id scope.
func idScope(t *harness.T) string {
	if t.Env.DPS.IDScope != "" {
		return t.Env.DPS.IDScope
	}
	return t.Env.DPS.Enrollments.IDScope
}

// register runs DPS.REGISTER on the board.
func register(ctx context.Context, t *harness.T, r registration) (*registerResult, bool) {
	cfg, clock, ok := dpsReady(ctx, t)
	if !ok {
		return nil, false
	}
	d, from, err := boardDialect(t)
	if err != nil {
		t.Error(err)
		return nil, false
	}
	args := []protocol.Arg{protocol.String("id_scope", idScope(t)), protocol.String("reg_id", r.RegID)}
	if r.GroupKey != "" {
		args = append(args, protocol.String("group_key", r.GroupKey))
	} else {
		args = append(args, protocol.String("key", r.Key))
	}
	// A payload unique to this registration marks the board's register
	// request among those of other boards registering the same id.
	nonce := fmt.Sprintf("%s-%08x", memberID(t, "run"), rand.Uint32())
	payload := `{"hiltestRun":"` + nonce + `"}`
	args = append(args, protocol.Int("ttl", registerTTL), protocol.String("payload", payload), protocol.Int("timeout", registerTimeout))
	res := &registerResult{Start: time.Now(), Config: cfg, Dialect: d, DialectFrom: from, Clock: clock, Registration: r,
		Nonce: nonce, Payload: json.RawMessage(payload)}
	if t.Env.DPS.Mock != nil {
		res.Since = t.Env.DPS.Mock.RequestCount()
	}
	f, ok := mustCall(ctx, t, protocol.VerbDPSRegister, args...)
	if !ok {
		return nil, false
	}
	if !requireResults(t, f, "status") {
		return nil, false
	}
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	res.Op, res.Status, res.Hub, res.DeviceID = f.String("op"), f.String("status"), f.String("hub"), f.String("device_id")
	res.HTTP, res.RetryAfter = split(f.String("http")), split(f.String("retry_after"))
	res.ErrorCode, res.ErrorMsg = f.String("error_code"), f.String("error_msg")
	for _, k := range []string{"op", "status", "hub", "device_id", "http", "retry_after", "error_code"} {
		if f.Has(k) {
			t.Output(k, f.String(k))
		}
	}
	return res, true
}

// summary describes a registration outcome in one line.
func (r *registerResult) summary() string {
	s := fmt.Sprintf("status=%s http=%s", r.Status, strings.Join(r.HTTP, ","))
	if r.ErrorCode != "" {
		s += " error_code=" + r.ErrorCode
	}
	if r.ErrorMsg != "" {
		s += fmt.Sprintf(" error_msg=%q", r.ErrorMsg)
	}
	return s
}

// boardRequests returns the requests the mock DPS captured from this
// registration, in order (see requestsOf).
func boardRequests(t *harness.T, r *registerResult) []mockdps.Request {
	return requestsOf(regRequests(t, r), r.Registration.RegID, r.Start, r.Nonce, r.Op)
}

// regRequests returns the requests the mock DPS captured for the
// registration id since the registration started, from any board; nil
// without a mock. It reads only those requests, not the whole capture,
// which every DPS case of every board reads several times.
func regRequests(t *harness.T, r *registerResult) []mockdps.Request {
	if t.Env.DPS.Mock == nil {
		return nil
	}
	return t.Env.DPS.Mock.RequestsForSince(r.Registration.RegID, r.Since)
}

// requestsOf picks one registration's requests out of the mock DPS's
// capture, in order. Boards on one bench may register the same id at the
// same time, so the registration id does not tell their requests apart:
//
//   - its register requests are those carrying nonce in their payload
//     (only a register request has one);
//   - its operations are the operation ids the mock DPS answered those
//     requests with (Request.OperationID), so its polls are the requests for
//     those operations, whatever operation id the board reported;
//   - only when no register request carries the nonce (a board that drops
//     the payload) does the operation id the board reported (reportedOp)
//     stand in: the register request answered with it and its polls.
func requestsOf(all []mockdps.Request, regID string, start time.Time, nonce, reportedOp string) []mockdps.Request {
	// The candidates are filtered in place of a copy: a registration id
	// many boards share has many requests, and this runs several times per
	// case and board.
	cand := func(q *mockdps.Request) bool {
		return strings.EqualFold(q.RegistrationID, regID) && !q.Time.Before(start)
	}
	carriesNonce := func(q *mockdps.Request) bool {
		return nonce != "" && bytes.Contains(q.Body, []byte(nonce))
	}
	ops := map[string]bool{}
	byNonce := false
	for i := range all {
		if q := &all[i]; cand(q) && carriesNonce(q) {
			byNonce = true
			if q.OperationID != "" {
				ops[q.OperationID] = true
			}
		}
	}
	if !byNonce && reportedOp != "" {
		ops[reportedOp] = true
	}
	var out []mockdps.Request
	for i := range all {
		q := &all[i]
		if !cand(q) {
			continue
		}
		op, isPoll := polledOperation(*q)
		if carriesNonce(q) || (isPoll && ops[op]) ||
			(!byNonce && isRegisterRequest(*q) && q.OperationID != "" && ops[q.OperationID]) {
			out = append(out, *q)
		}
	}
	return out
}

// isRegisterRequest reports whether q is a register request (PUT
// …/register).
func isRegisterRequest(q mockdps.Request) bool {
	return q.Method == http.MethodPut && strings.Contains(q.RequestURI, "/register")
}

// polledOperation returns the operation id a poll (GET
// /{idScope}/registrations/{id}/operations/{operationId}) asks about.
func polledOperation(q mockdps.Request) (string, bool) {
	if q.Method != http.MethodGet {
		return "", false
	}
	path, _, _ := strings.Cut(q.RequestURI, "?")
	path = strings.TrimPrefix(path, "/")
	var seg [5]string
	for i := range 4 {
		var ok bool
		if seg[i], path, ok = strings.Cut(path, "/"); !ok {
			return "", false
		}
	}
	seg[4] = path
	if seg[1] != "registrations" || seg[3] != "operations" || seg[4] == "" || strings.Contains(seg[4], "/") {
		return "", false
	}
	op, err := url.PathUnescape(seg[4])
	if err != nil {
		return "", false
	}
	return op, true
}

// mockDiagnosis returns the mock DPS's latest diagnosis of this
// registration's requests, nil without one (or without a mock).
//
// Without a request of its own (a board that dropped the payload and got
// no operation id), it falls back to the latest diagnosis for the
// registration id since the registration started.
func mockDiagnosis(t *harness.T, r *registerResult) *mockdps.Diagnosis {
	var last *mockdps.Diagnosis
	mine := boardRequests(t, r)
	for _, q := range mine {
		if q.Diagnosis != nil {
			last = q.Diagnosis
		}
	}
	if len(mine) > 0 || t.Env.DPS.Mock == nil {
		return last
	}
	for _, d := range t.Env.DPS.Mock.DiagnosesFor(r.Registration.RegID) {
		if !d.Time.Before(r.Start) {
			last = &d
		}
	}
	return last
}

// capturedRegisters returns this registration's register requests as the
// mock DPS captured them. When none carries the nonce (a board that drops
// the payload), it returns every register request for the id since the
// registration started.
func capturedRegisters(t *harness.T, r *registerResult) []mockdps.Request {
	if t.Env.DPS.Mock == nil {
		return nil
	}
	all := regRequests(t, r)
	var out []mockdps.Request
	for _, q := range requestsOf(all, r.Registration.RegID, r.Start, r.Nonce, r.Op) {
		if isRegisterRequest(q) {
			out = append(out, q)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, q := range all {
		if isRegisterRequest(q) && !q.Time.Before(r.Start) {
			out = append(out, q)
		}
	}
	return out
}

// deviceKey is the key the registration's token must be signed with.
func (r registration) deviceKey() (string, error) {
	if r.GroupKey == "" {
		return r.Key, nil
	}
	return reference.DeriveDeviceKey(r.GroupKey, r.RegID)
}

// tokenInputs is how the registration's token should have been made, with
// the expiry the board used when it is plausible (clock + ttl).
func (r *registerResult) tokenInputs(t *harness.T, boardSE int64) (tokenInputs, error) {
	key, err := r.Registration.deviceKey()
	if err != nil {
		return tokenInputs{}, err
	}
	se := r.Clock + registerTTL
	if boardSE >= se-ttlSlack && boardSE <= now(t).Unix()+registerTTL+ttlSlack {
		se = boardSE
	}
	return tokenInputs{Dialect: r.Dialect, DialectFrom: r.DialectFrom, IDScope: idScope(t), RegID: r.Registration.RegID,
		Key: key, GroupKey: r.Registration.GroupKey, Expiry: se, FromClock: true, TTL: registerTTL, KeyName: r.Dialect.DefaultKeyName()}, nil
}

// explainFailure returns the diagnosis of a failed registration: the
// board's token as the reference sees it, and the mock DPS's diagnosis.
func explainFailure(t *harness.T, r *registerResult) string {
	var parts []string
	if reqs := capturedRegisters(t, r); len(reqs) > 0 {
		q := reqs[len(reqs)-1]
		if in, ok := capturedInputs(t, r, q.Raw); ok {
			if cause := requestCause(q.Raw, in, r.Config, r.Payload); cause != "" {
				parts = append(parts, cause)
			}
		}
	}
	if d := mockDiagnosis(t, r); d != nil {
		parts = append(parts, fmt.Sprintf("mock DPS: %s: %s", d.Cause, d.Message))
	}
	return strings.Join(parts, "; ")
}

// requestCause names what is wrong with a captured register request
// compared with the reference's ("" when it matches).
func requestCause(raw []byte, in tokenInputs, cfg dpsConfig, payload json.RawMessage) string {
	ref, err := referenceSAS(in)
	if err != nil {
		return ""
	}
	wantRaw, err := reference.RegisterRequestBytes(reference.RequestParams{Endpoint: cfg.endpoint(), APIVersion: cfg.APIVersion,
		IDScope: in.IDScope, RegistrationID: in.RegID, Token: ref.Token, Payload: payload})
	if err != nil {
		return ""
	}
	want, err := reference.ParseRequest(wantRaw)
	if err != nil {
		return ""
	}
	got, err := reference.ParseRequest(raw)
	if err != nil {
		return "malformed HTTP request: " + err.Error()
	}
	return diagnoseRequest(want, got, in)
}

// expectAssigned checks a registration reached "assigned" on one of hubs
// with the device id, and compares the captured request.
func expectAssigned(t *harness.T, r *registerResult, hubs []string, deviceID string) {
	if r.Status != "assigned" {
		t.Fail(harness.Failure{Message: fmt.Sprintf("DPS.REGISTER %s: %s, expected assigned", r.Registration.RegID, r.summary()),
			Diagnosis: explainFailure(t, r)})
		compareCaptured(t, r)
		return
	}
	if !slices.Contains(hubs, r.Hub) {
		t.Fail(harness.Failure{Message: fmt.Sprintf("DPS.REGISTER %s: assigned to hub %q, expected %s", r.Registration.RegID, r.Hub, strings.Join(hubs, " or ")),
			Diagnosis: "wrong hub in the result (the board misparsed registrationState.assignedHub?)"})
	}
	if r.DeviceID != deviceID {
		t.Fail(harness.Failure{Message: fmt.Sprintf("DPS.REGISTER %s: device_id %q, expected %q", r.Registration.RegID, r.DeviceID, deviceID),
			Diagnosis: "wrong device id in the result (the board misparsed registrationState.deviceId?)"})
	}
	if r.Op == "" {
		t.Fail(harness.Failure{Message: "DPS.REGISTER answered no op (operation id)"})
	}
	checkRegistrationState(t, r)
	compareCaptured(t, r)
}

// checkRegistrationState asks the mock DPS, with the reference client, for
// the registration's state (device registration status lookup) and checks
// the board reported the hub and device id the DPS assigned.
func checkRegistrationState(t *harness.T, r *registerResult) {
	m := t.Env.DPS.Mock
	if m == nil {
		return
	}
	key, err := r.Registration.deviceKey()
	if err != nil {
		t.Error(fmt.Errorf("reference: %w", err))
		return
	}
	// One keep-alive client per mock: a new client per lookup costs a full
	// TLS handshake each time.
	c, err := reference.NewClient(reference.ClientOptions{Endpoint: m.Host(), APIVersion: r.Config.APIVersion, HTTPClient: m.SharedClient()})
	if err != nil {
		t.Error(fmt.Errorf("reference client: %w", err))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, _, err := c.RegistrationStatus(ctx, reference.RegisterParams{IDScope: idScope(t), RegistrationID: r.Registration.RegID, Key: key})
	if err != nil {
		t.Logf("registration status lookup at the mock DPS: %v", err)
		return
	}
	if st.AssignedHub != r.Hub || st.DeviceID != r.DeviceID {
		t.Fail(harness.Failure{Message: fmt.Sprintf("the board reported hub %q device %q; the mock DPS assigned hub %q device %q",
			r.Hub, r.DeviceID, st.AssignedHub, st.DeviceID), Diagnosis: "the board misparsed the registration result"})
	}
}

// compareCaptured compares the register request the mock DPS captured from
// the board with the reference's, in canonical form. With several
// candidates (another board registering the same id) one must match.
func compareCaptured(t *harness.T, r *registerResult) {
	if t.Env.DPS.Mock == nil {
		t.Logf("no mock DPS: the register request on the wire is not compared")
		return
	}
	reqs := capturedRegisters(t, r)
	if len(reqs) == 0 {
		t.Fail(harness.Failure{Message: fmt.Sprintf("the mock DPS received no register request for %s", r.Registration.RegID),
			Diagnosis: "the board did not send the register request (TLS or connection problem?)"})
		return
	}
	for _, q := range reqs {
		in, ok := capturedInputs(t, r, q.Raw)
		if !ok {
			return
		}
		if requestMatches(q.Raw, in, r.Config, r.Payload) {
			return
		}
	}
	q := reqs[len(reqs)-1]
	t.Output("request", string(q.Raw))
	in, _ := capturedInputs(t, r, q.Raw)
	compareRequest(t, "captured DPS.REGISTER", q.Raw, in, r.Config, r.Payload)
}

func capturedInputs(t *harness.T, r *registerResult, raw []byte) (tokenInputs, bool) {
	se := int64(0)
	if c, err := reference.ParseRequest(raw); err == nil {
		if a, ok := c.Header("Authorization"); ok {
			if tok, err := reference.ParseToken(a); err == nil {
				se = tok.Expiry
			}
		}
	}
	in, err := r.tokenInputs(t, se)
	if err != nil {
		t.Error(fmt.Errorf("reference: %w", err))
		return tokenInputs{}, false
	}
	return in, true
}

// requestMatches reports whether raw is, in canonical form, the reference's request.
func requestMatches(raw []byte, in tokenInputs, cfg dpsConfig, payload json.RawMessage) bool {
	ref, err := referenceSAS(in)
	if err != nil {
		return false
	}
	wantRaw, err := reference.RegisterRequestBytes(reference.RequestParams{Endpoint: cfg.endpoint(), APIVersion: cfg.APIVersion,
		IDScope: in.IDScope, RegistrationID: in.RegID, Token: ref.Token, Payload: payload})
	if err != nil {
		return false
	}
	want, err1 := reference.ParseRequest(wantRaw)
	got, err2 := reference.ParseRequest(raw)
	return err1 == nil && err2 == nil && string(want.Bytes()) == string(got.Bytes())
}

// enabledIndividuals returns the enabled individual enrollments.
func enabledIndividuals(t *harness.T) []mockdps.IndividualEnrollment {
	var out []mockdps.IndividualEnrollment
	for _, e := range t.Env.DPS.Enrollments.Individual {
		if !e.Disabled {
			out = append(out, e)
		}
	}
	return out
}

// individualsToRegister returns the enabled individual enrollments, or
// false when the case cannot run: no DPS (see dpsAvailable) or no enabled
// individual enrollment (the case is skipped).
func individualsToRegister(t *harness.T) ([]mockdps.IndividualEnrollment, bool) {
	if !dpsAvailable(t) {
		return nil, false
	}
	es := enabledIndividuals(t)
	if len(es) == 0 {
		t.Skip("no enabled individual enrollment")
		return nil, false
	}
	return es, true
}

// memberID is a registration id for this board in an enrollment group,
// distinct per board so that boards on one bench do not share a device.
func memberID(t *harness.T, suffix string) string {
	var b strings.Builder
	b.WriteString("hiltest-")
	for _, c := range strings.ToLower(t.Board.Name()) {
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	b.WriteString("-" + suffix)
	id := b.String()
	if len(id) > reference.MaxRegistrationIDLength {
		id = id[len(id)-reference.MaxRegistrationIDLength:]
	}
	return strings.TrimLeft(id, "-")
}

// individualDeviceID is the device id DPS assigns an individual enrollment.
func individualDeviceID(e mockdps.IndividualEnrollment) string {
	if e.DeviceID != "" {
		return e.DeviceID
	}
	return e.RegistrationID
}

func runIndividualPrimary(ctx context.Context, t *harness.T) {
	es, ok := individualsToRegister(t)
	if !ok {
		return
	}
	for _, e := range es {
		r, ok := register(ctx, t, registration{RegID: e.RegistrationID, Key: e.PrimaryKey})
		if !ok {
			return
		}
		expectAssigned(t, r, []string{e.AssignedHub}, individualDeviceID(e))
	}
}

func runIndividualSecondary(ctx context.Context, t *harness.T) {
	if !dpsAvailable(t) {
		return
	}
	for _, e := range enabledIndividuals(t) {
		if e.SecondaryKey == "" {
			continue
		}
		r, ok := register(ctx, t, registration{RegID: e.RegistrationID, Key: e.SecondaryKey})
		if ok {
			expectAssigned(t, r, []string{e.AssignedHub}, individualDeviceID(e))
		}
		return
	}
	t.Skip("no enabled individual enrollment has a secondary key")
}

// enabledGroup returns the first enabled group (with a secondary key when asked).
func enabledGroup(t *harness.T, secondary bool) (mockdps.GroupEnrollment, bool) {
	for _, g := range t.Env.DPS.Enrollments.Groups {
		if !g.Disabled && (!secondary || g.SecondaryKey != "") {
			return g, true
		}
	}
	return mockdps.GroupEnrollment{}, false
}

func runGroup(ctx context.Context, t *harness.T, secondary bool) {
	if !dpsAvailable(t) {
		return
	}
	g, ok := enabledGroup(t, secondary)
	if !ok {
		t.Skip("no enabled enrollment group (with that key)")
		return
	}
	key, suffix := g.PrimaryKey, "group"
	if secondary {
		key, suffix = g.SecondaryKey, "group2"
	}
	r, ok := register(ctx, t, registration{RegID: memberID(t, suffix), GroupKey: key})
	if !ok {
		return
	}
	// Hashed allocation spreads devices over the group's hubs; DPS does not
	// document its hash, so any of the group's hubs is right (a static
	// group has exactly one).
	expectAssigned(t, r, g.Hubs, r.Registration.RegID)
}

func runGroupPrimary(ctx context.Context, t *harness.T)   { runGroup(ctx, t, false) }
func runGroupSecondary(ctx context.Context, t *harness.T) { runGroup(ctx, t, true) }

// expectDisabled checks a registration of a disabled enrollment: the
// device authenticates but is not assigned; DPS answers status "disabled".
func expectDisabled(t *harness.T, r *registerResult) {
	if r.Status == "disabled" {
		if d := mockDiagnosis(t, r); d != nil && d.Cause != mockdps.CauseDisabled {
			t.Fail(harness.Failure{Message: fmt.Sprintf("status disabled, but the mock DPS diagnosed %s: %s", d.Cause, d.Message)})
		}
		return
	}
	diag := explainFailure(t, r)
	if r.Status == "assigned" {
		diag = "a disabled enrollment was assigned"
	}
	t.Fail(harness.Failure{Message: fmt.Sprintf("DPS.REGISTER %s (disabled enrollment): %s, expected status disabled", r.Registration.RegID, r.summary()),
		Diagnosis: diag})
}

func runDisabledIndividual(ctx context.Context, t *harness.T) {
	if !dpsAvailable(t) {
		return
	}
	for _, e := range t.Env.DPS.Enrollments.Individual {
		if e.Disabled {
			if r, ok := register(ctx, t, registration{RegID: e.RegistrationID, Key: e.PrimaryKey}); ok {
				expectDisabled(t, r)
			}
			return
		}
	}
	t.Skip("no disabled individual enrollment")
}

func runDisabledGroup(ctx context.Context, t *harness.T) {
	if !dpsAvailable(t) {
		return
	}
	for _, g := range t.Env.DPS.Enrollments.Groups {
		if g.Disabled {
			if r, ok := register(ctx, t, registration{RegID: memberID(t, "disabled-group"), GroupKey: g.PrimaryKey}); ok {
				expectDisabled(t, r)
			}
			return
		}
	}
	t.Skip("no disabled enrollment group")
}

// wrongKeyFor returns a valid key that is none of the enrollment's keys.
func wrongKeyFor(e mockdps.IndividualEnrollment) string {
	k, err := reference.DeriveDeviceKey(e.PrimaryKey, "hiltest-not-this-device")
	if err != nil {
		return "AAECAwQFBgcICQoLDA0ODw=="
	}
	return k
}

func runWrongKey(ctx context.Context, t *harness.T) {
	es, ok := individualsToRegister(t)
	if !ok {
		return
	}
	e := es[0]
	r, ok := register(ctx, t, registration{RegID: e.RegistrationID, Key: wrongKeyFor(e)})
	if !ok {
		return
	}
	if r.Status != "failed" || !slices.Contains(r.HTTP, "401") || r.ErrorCode != "401002" {
		t.Fail(harness.Failure{Message: fmt.Sprintf("DPS.REGISTER with a wrong key: %s, expected status=failed, http 401, error_code=401002", r.summary()),
			Diagnosis: wrongKeyCause(r)})
	}
	if t.Env.DPS.Mock == nil {
		return
	}
	d := mockDiagnosis(t, r)
	switch {
	case d == nil:
		t.Fail(harness.Failure{Message: "the mock DPS recorded no diagnosis for the wrong-key registration",
			Diagnosis: "the register request did not reach the mock DPS"})
	case d.Cause != mockdps.CauseWrongKey:
		t.Fail(harness.Failure{Message: fmt.Sprintf("the mock DPS diagnosed %s (%s), expected %s", d.Cause, d.Message, mockdps.CauseWrongKey),
			Diagnosis: "the board's token is wrong in another way than the key: " + explainFailure(t, r)})
	default:
		t.Logf("mock DPS: %s", d.String())
	}
}

// wrongKeyCause explains a board answer to a rejected registration.
func wrongKeyCause(r *registerResult) string {
	switch {
	case r.Status == "assigned":
		return "the registration succeeded with a wrong key"
	case !slices.Contains(r.HTTP, "401"):
		return "no 401 in the exchanges: " + strings.Join(r.HTTP, ",")
	case r.ErrorCode == "":
		return "the board did not report the DPS error body's errorCode"
	case r.Status != "failed":
		return fmt.Sprintf("a 401 must end in status failed, not %q", r.Status)
	}
	return fmt.Sprintf("error_code %s instead of 401002", r.ErrorCode)
}

func runRetryAfter(ctx context.Context, t *harness.T) {
	if !dpsAvailable(t) {
		return
	}
	if t.Env.DPS.Mock == nil {
		t.Skip("needs the mock DPS to see when the board polled")
		return
	}
	g, ok := enabledGroup(t, false)
	if !ok {
		t.Skip("no enabled enrollment group")
		return
	}
	r, ok := register(ctx, t, registration{RegID: memberID(t, "retry-after"), GroupKey: g.PrimaryKey})
	if !ok {
		return
	}
	if r.Status != "assigned" {
		t.Fail(harness.Failure{Message: fmt.Sprintf("DPS.REGISTER: %s, expected assigned", r.summary()), Diagnosis: explainFailure(t, r)})
		return
	}
	// The board's exchanges as the mock saw them, in order.
	seq := boardRequests(t, r)
	if len(seq) == 0 {
		t.Fail(harness.Failure{Message: fmt.Sprintf("the mock DPS holds none of the requests of this registration of %s", r.Registration.RegID),
			Diagnosis: "the board's requests cannot be told apart: no register request carries the payload and none answered the operation id the board reported"})
		return
	}
	checkPolling(t, seq, r.RetryAfter)
}

// checkPolling checks the board's polling against what the mock DPS sent
// and saw: after each answer carrying a Retry-After, the board's next
// request must come no earlier than that many seconds later ("ignores
// Retry-After"). Then the Retry-After values the board reported (reported,
// its retry_after result) must be those the mock DPS sent, in order
// ("misreports Retry-After").
func checkPolling(t *harness.T, seq []mockdps.Request, reported []string) {
	var sent []string
	ignored := false
	for i, q := range seq {
		if !q.HasRetryAfter {
			continue
		}
		sent = append(sent, strconv.Itoa(q.RetryAfter))
		if i+1 == len(seq) {
			continue
		}
		gap := seq[i+1].Time.Sub(q.Time)
		want := time.Duration(q.RetryAfter) * time.Second
		t.Logf("%s %s -> %d Retry-After %d; next request %.3f s later", q.Method, q.RequestURI, q.Status, q.RetryAfter, gap.Seconds())
		if !ignored && gap+retryAfterTolerance < want {
			ignored = true
			t.Fail(harness.Failure{Message: fmt.Sprintf("polled %.3f s after a %d with Retry-After: %d (the mock DPS's capture)", gap.Seconds(), q.Status, q.RetryAfter),
				Diagnosis: "ignores Retry-After"})
		}
	}
	if len(sent) == 0 {
		t.Logf("the DPS sent no Retry-After: nothing to check")
	}
	got := make([]string, 0, len(reported))
	for _, v := range reported {
		v = strings.TrimSpace(v)
		if n, err := strconv.Atoi(v); err == nil {
			v = strconv.Itoa(n)
		}
		got = append(got, v)
	}
	if !slices.Equal(got, sent) {
		t.Fail(harness.Failure{Message: fmt.Sprintf("the board reported retry_after=%q; the mock DPS sent Retry-After %q",
			strings.Join(reported, ","), strings.Join(sent, ",")), Diagnosis: "misreports Retry-After"})
	}
}

// dpsAvailable skips the case when the bench has no DPS.
func dpsAvailable(t *harness.T) bool {
	if t.Env == nil || t.Env.DPS.Host == "" {
		t.Skip("the bench has no DPS")
		return false
	}
	if t.Env.DPS.Enrollments == nil {
		t.Skip("the bench's DPS enrollments (keys) are not known")
		return false
	}
	return true
}
