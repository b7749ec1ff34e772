package mockdps

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Error codes in the body's errorCode. The service documents the HTTP
// status of each error class (MicrosoftDocs/azure-docs
// articles/iot-dps/how-to-troubleshoot-dps.md) and 6-digit codes of the form
// status*1000+n; only 401002 "Unauthorized" is observed for SAS failures
// (FACTS §3, and the original bug report). The other sub-codes are the
// mock's own, chosen in that form.
const (
	codeBadBody          = 400001
	codeRegIDMismatch    = 400002
	codeBadAPIVersion    = 400003
	codeBadRegID         = 400004
	codeUnauthorized     = 401002
	codeNotFound         = 404001
	codeUnknownOperation = 404002
	codeNotRegistered    = 404003
	codeMethod           = 405001
	codeTooLarge         = 413001
	codeContentType      = 415001
	codeThrottled        = 429001
)

// errorBody is ProvisioningServiceErrorDetails (device.json).
type errorBody struct {
	ErrorCode    int               `json:"errorCode"`
	TrackingID   string            `json:"trackingId"`
	Message      string            `json:"message"`
	TimestampUTC string            `json:"timestampUtc"`
	Info         map[string]string `json:"info,omitempty"`
}

// route is a parsed DPS path.
type route struct {
	kind  string // "register", "operation", "status", "" = not a DPS path
	scope string
	regID string
	opID  string
}

func parseRoute(path string) route {
	if len(path) < 2 || path[0] != '/' {
		return route{}
	}
	p := strings.Split(path[1:], "/")
	if len(p) < 3 || p[1] != "registrations" || p[0] == "" || p[2] == "" {
		return route{}
	}
	r := route{scope: p[0], regID: p[2]}
	switch {
	case len(p) == 3:
		r.kind = "status"
	case len(p) == 4 && p[3] == "register":
		r.kind = "register"
	case len(p) == 5 && p[3] == "operations" && p[4] != "":
		r.kind, r.opID = "operation", p[4]
	default:
		return route{}
	}
	return r
}

// method is the HTTP method of each route (device.json operations).
func (r route) method() string {
	switch r.kind {
	case "register":
		return http.MethodPut
	case "operation":
		return http.MethodGet
	case "status":
		return http.MethodPost
	}
	return ""
}

// exchange is one request being served.
type exchange struct {
	s      *Server
	w      http.ResponseWriter
	r      *http.Request
	now    time.Time
	route  route
	body   []byte
	status int
	// opID is the operationId of the response body ("" when none).
	opID string
	diag *Diagnosis
	// hijacked is the connection taken over by a drop fault.
	hijacked io.Closer
}

// ServeHTTP serves the DPS device API and the /_mock/ admin endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_mock/") {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, s.opts.MaxBodyBytes))
		if rc := connFrom(r.Context()); rc != nil {
			rc.take()
		}
		s.serveAdmin(w, r)
		return
	}
	ex := &exchange{s: s, w: w, r: r, now: s.now()}
	dropped := ex.serve()
	s.capture1(ex, dropped)
	if ex.hijacked != nil {
		_ = ex.hijacked.Close()
	}
}

// serve runs the request through the checks in order: faults, rate limit,
// route and method, api-version, id scope, registration id, content type,
// body, authentication; then the operation. It returns true when the
// connection was dropped (fault).
func (ex *exchange) serve() bool {
	s, r := ex.s, ex.r
	ex.route = parseRoute(r.URL.Path)
	// Read the body first (capped) so that the capture holds it whatever
	// the answer.
	var tooLarge bool
	ex.body, tooLarge = readBody(r, s.opts.MaxBodyBytes)

	if f, ok := s.activeFault(); ok {
		switch f.Mode {
		case FaultDrop:
			if hj, ok := ex.w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					ex.hijacked = c // closed once the request is captured
					ex.setDiag(CauseFault, "a response", "connection dropped", "injected fault: connection dropped")
					return true
				}
			}
			ex.fail(http.StatusServiceUnavailable, 503001, "Service unavailable.", CauseFault, "", "", "injected fault: drop (connection not hijackable, answered 503)")
			return false
		case FaultServerError:
			msg := "Internal server error."
			if f.Status == http.StatusServiceUnavailable {
				msg = "Service unavailable."
			}
			ex.w.Header().Set("Retry-After", strconv.Itoa(s.opts.ThrottleRetryAfter))
			ex.fail(f.Status, f.Status*1000+1, msg, CauseFault, "", "", fmt.Sprintf("injected fault: %d", f.Status))
			return false
		case FaultSlow:
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
			}
		}
	}
	if !s.limiter.allow() {
		// MicrosoftDocs/azure-docs articles/iot-dps/how-to-troubleshoot-dps.md:
		// 429 "Operations are being throttled by the service"; clients honour
		// Retry-After (Azure/azure-iot-sdk-c prov_transport_http_client.c).
		ex.w.Header().Set("Retry-After", strconv.Itoa(s.opts.ThrottleRetryAfter))
		ex.fail(http.StatusTooManyRequests, codeThrottled, "Operations are being throttled by the service.", CauseThrottled,
			fmt.Sprintf("at most %g requests/s", s.opts.RateLimit), "more", "rate limit exceeded")
		return false
	}
	rt := ex.route
	if rt.kind == "" {
		ex.fail(http.StatusNotFound, codeNotFound, "Resource not found.", CauseNotFound,
			"PUT /{idScope}/registrations/{id}/register, GET …/operations/{operationId} or POST /{idScope}/registrations/{id}",
			r.Method+" "+clip(r.URL.Path, 200), "no such route")
		return false
	}
	if r.Method != rt.method() {
		ex.w.Header().Set("Allow", rt.method())
		ex.fail(http.StatusMethodNotAllowed, codeMethod, "Method not allowed.", CauseMethodNotAllowed,
			rt.method(), clip(r.Method, 20), "method not allowed for this route")
		return false
	}
	apiVersion, ok := queryValue(r.URL.RawQuery, "api-version")
	if !ok || !supportedAPIVersion(apiVersion) {
		got := "no api-version"
		if ok {
			got = "api-version=" + clip(apiVersion, 40)
		}
		ex.fail(http.StatusBadRequest, codeBadAPIVersion, "Invalid or missing api-version.", CauseBadAPIVersion,
			"api-version one of 2019-03-31, 2021-06-01, 2021-10-01", got, "the api-version query parameter is missing or unsupported")
		return false
	}
	if rt.scope != s.enr.scope {
		ex.fail(http.StatusNotFound, codeNotFound, "Resource not found.", CauseUnknownScope,
			"id scope "+s.enr.scope, "id scope "+clip(rt.scope, 80), "no DPS instance with this id scope")
		return false
	}
	if err := checkRegistrationID(rt.regID); err != nil {
		ex.fail(http.StatusBadRequest, codeBadRegID, "Invalid registration id.", CauseBadRegistrationID,
			"letters, digits and - . _ : (up to 128)", clip(rt.regID, 140), err.Error())
		return false
	}
	if r.Method != http.MethodGet {
		if ct := r.Header.Get("Content-Type"); !isJSONContentType(ct) {
			ex.fail(http.StatusUnsupportedMediaType, codeContentType, "Unsupported media type.", CauseWrongContentType,
				"Content-Type: application/json", "Content-Type: "+clip(ct, 80), "the body must be sent as application/json")
			return false
		}
		if tooLarge {
			ex.fail(http.StatusRequestEntityTooLarge, codeTooLarge, "Request body too large.", CauseBodyTooLarge,
				fmt.Sprintf("at most %d bytes", s.opts.MaxBodyBytes), "more", "request body over the cap")
			return false
		}
		var body struct {
			RegistrationID *string         `json:"registrationId"`
			Payload        json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(ex.body, &body); err != nil || body.RegistrationID == nil {
			msg := "body has no registrationId string"
			if err != nil {
				msg = "body is not a JSON object: " + err.Error()
			}
			ex.fail(http.StatusBadRequest, codeBadBody, "The request body is invalid.", CauseMalformedBody,
				`{"registrationId":"`+rt.regID+`"}`, clip(string(ex.body), 200), msg)
			return false
		}
		if !strings.EqualFold(*body.RegistrationID, rt.regID) {
			ex.fail(http.StatusBadRequest, codeRegIDMismatch, "The registration id in the body does not match the request.", CauseRegistrationIDBody,
				"registrationId "+rt.regID, "registrationId "+clip(*body.RegistrationID, 140), "body registrationId differs from the path")
			return false
		}
		// body.Payload is accepted and not used: without a custom
		// allocation policy the service does not act on it.
	}

	auth, hasAuth := r.Header["Authorization"]
	in := authInput{HasAuth: hasAuth, IDScope: rt.scope, RegistrationID: rt.regID, Now: ex.now,
		Skew: s.opts.ClockSkew, MaxLifetime: s.opts.MaxTokenLifetime}
	if hasAuth {
		in.Authorization = auth[0]
	}
	who, ad := s.enr.authenticate(in)
	if ad != nil {
		ex.fail(http.StatusUnauthorized, codeUnauthorized, "Unauthorized", ad.Cause, ad.Expected, ad.Received, ad.Message)
		return false
	}
	switch rt.kind {
	case "register":
		ex.register(who, apiVersion)
	case "operation":
		ex.operation()
	case "status":
		ex.registrationStatus()
	}
	return false
}

// register: 202 with operationId and status "assigning", Retry-After and
// Location (MicrosoftDocs/azure-docs articles/iot-dps/iot-dps-https-sym-key-support.md,
// device.json RuntimeRegistration_RegisterDevice).
func (ex *exchange) register(who principal, apiVersion string) {
	s, rt := ex.s, ex.route
	d := s.state.get(rt.regID, true)
	op := s.state.newOperation(d, ex.now, apiVersion, who)
	h := ex.w.Header()
	h.Set("Retry-After", strconv.Itoa(max(s.opts.RetryAfter, 0)))
	h.Set("Location", ex.location("/"+rt.scope+"/registrations/"+rt.regID+"/register"))
	ex.opID = op.id
	ex.json(http.StatusAccepted, operationStatus{OperationID: op.id, Status: "assigning"})
}

// operation: 202 "assigning" (with a minimal registrationState, as the
// service's stage-2 answer quoted in azure-sdk-for-c) until the assignment
// delay has passed, then 200 with the final status and registrationState.
func (ex *exchange) operation() {
	s, rt := ex.s, ex.route
	d := s.state.get(rt.regID, false)
	var op *operation
	if d != nil {
		d.mu.Lock()
		op = d.ops[rt.opID]
		d.mu.Unlock()
	}
	if op == nil {
		ex.fail(http.StatusNotFound, codeUnknownOperation, "Operation not found.", CauseUnknownOperation,
			"an operationId returned by a register request of "+rt.regID, "operationId "+clip(rt.opID, 100), "unknown operation id")
		return
	}
	ex.opID = op.id
	if !d.finish(op, ex.now, s.opts.AssignDelay) {
		h := ex.w.Header()
		h.Set("Retry-After", strconv.Itoa(max(s.opts.RetryAfter, 0)))
		h.Set("Location", ex.location(ex.r.URL.Path))
		ex.json(http.StatusAccepted, operationStatus{OperationID: op.id, Status: "assigning",
			RegistrationState: &registrationState{RegistrationID: d.regID, Status: "assigning"}})
		return
	}
	d.mu.Lock()
	st, status := op.state, op.status
	d.mu.Unlock()
	if status == "disabled" {
		ex.disabledDiag(op.who)
	}
	ex.json(http.StatusOK, operationStatus{OperationID: op.id, Status: status, RegistrationState: st})
}

// registrationStatus: 200 with DeviceRegistrationResult, not wrapped
// (device.json RuntimeRegistration_DeviceRegistrationStatusLookup).
func (ex *exchange) registrationStatus() {
	s, rt := ex.s, ex.route
	d := s.state.get(rt.regID, false)
	if d != nil {
		d.mu.Lock()
		last := d.last
		d.mu.Unlock()
		if last != nil {
			d.finish(last, ex.now, s.opts.AssignDelay)
		}
		d.mu.Lock()
		st := d.lastDone
		if st == nil && last != nil {
			st = &registrationState{RegistrationID: d.regID, Status: "assigning"}
		}
		d.mu.Unlock()
		if st != nil {
			if st.Status == "disabled" && last != nil {
				ex.disabledDiag(last.who)
			}
			ex.json(http.StatusOK, st)
			return
		}
	}
	ex.fail(http.StatusNotFound, codeNotRegistered, "Registration not found.", CauseNotRegistered,
		"a register request first", "no registration for "+rt.regID, "the device never registered")
}

func (ex *exchange) disabledDiag(who principal) {
	ex.setDiag(CauseDisabled, "an enabled enrollment", who.describe()+" is disabled",
		"the enrollment is disabled: the device authenticated but is not assigned (status \"disabled\")")
}

func (ex *exchange) location(path string) string {
	scheme := "https"
	if ex.s.opts.Plain {
		scheme = "http"
	}
	return scheme + "://" + ex.r.Host + path
}

// json writes a JSON response with the service's headers.
func (ex *exchange) json(status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"errorCode":500000,"message":"encode"}`)
	}
	h := ex.w.Header()
	// Lower-case names as the service sends them (https-doc); set in the
	// map directly, since Header.Set would canonicalise them.
	h["Content-Type"] = []string{"application/json; charset=utf-8"}
	h["x-ms-request-id"] = []string{newUUID()}
	if ex.diag != nil && ex.s.opts.Explain {
		h["x-hiltest-diagnosis"] = []string{headerSafe(ex.diag.String())}
	}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	ex.w.WriteHeader(status)
	_, _ = ex.w.Write(b)
	ex.status = status
}

// fail answers with an Azure-shaped error and records the diagnosis.
func (ex *exchange) fail(status, code int, publicMsg string, cause Cause, expected, received, why string) {
	ex.setDiag(cause, expected, received, why)
	ex.diag.Status = status
	ex.w.Header()["x-ms-error-code"] = []string{strconv.Itoa(code)}
	ex.json(status, errorBody{ErrorCode: code, TrackingID: newUUID(), Message: publicMsg, TimestampUTC: azureTime(ex.now)})
}

func (ex *exchange) setDiag(cause Cause, expected, received, why string) {
	ex.diag = &Diagnosis{Time: ex.now, Method: ex.r.Method, RequestURI: clip(ex.r.RequestURI, 300),
		RegistrationID: ex.route.regID, Cause: cause, Expected: expected, Received: received, Message: why}
}

// capture1 records the finished exchange.
func (s *Server) capture1(ex *exchange, dropped bool) {
	if s.requests.max <= 0 && s.capture == nil {
		if ex.diag != nil {
			ex.diag.Status = ex.status
			s.diags.add(*ex.diag, regKey(ex.diag.RegistrationID))
		}
		if rc := connFrom(ex.r.Context()); rc != nil {
			rc.take()
		}
		return
	}
	r := ex.r
	req := Request{Time: ex.now, RemoteAddr: r.RemoteAddr, RegistrationID: ex.route.regID, Body: ex.body, Status: ex.status,
		RetryAfter: -1}
	if dropped {
		req.Status = 0
	} else {
		req.OperationID = ex.opID
		req.RetryAfter, req.HasRetryAfter = retryAfterOf(ex.w.Header())
	}
	if ex.diag != nil {
		ex.diag.Status = req.Status
		d := *ex.diag
		req.Diagnosis = &d
	}
	if rc := connFrom(r.Context()); rc != nil {
		req.Raw = rc.take()
		req.Body = keptBody(req.Raw, req.Body)
		if rc.tls != nil {
			cs := rc.tls.ConnectionState()
			req.TLSVersion, req.SNI = tlsVersionName(cs.Version), cs.ServerName
		}
	} else {
		// Not from our listener (a test calling ServeHTTP directly): header
		// order is lost; sort for a stable result.
		req.Method, req.RequestURI, req.Proto = r.Method, r.RequestURI, r.Proto
		for k, vs := range r.Header {
			for _, v := range vs {
				req.Header = append(req.Header, [2]string{k, v})
			}
		}
		sort.Slice(req.Header, func(i, j int) bool { return req.Header[i][0] < req.Header[j][0] })
		req.parsed = true
	}
	s.record(req)
}

// keptBody returns the body to keep with a captured request: the tail of
// raw when raw ends with it (a Content-Length body, read whole), else a
// copy of its length. The body as read sits in a buffer of at least 512
// bytes (io.ReadAll); the capture keeps thousands of requests.
func keptBody(raw, body []byte) []byte {
	switch {
	case body == nil:
		return nil
	case len(body) == 0:
		return []byte{}
	case bytes.HasSuffix(raw, body):
		return raw[len(raw)-len(body) : len(raw) : len(raw)]
	}
	return bytes.Clone(body)
}

// retryAfterOf returns the delay-seconds of the Retry-After header the
// response was sent with (the header map as written), -1 and false without
// one. The mock only sends delay-seconds; another form reads as none.
func retryAfterOf(h http.Header) (int, bool) {
	vs := h["Retry-After"]
	if len(vs) == 0 {
		return -1, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(vs[0]))
	if err != nil || n < 0 {
		return -1, false
	}
	return n, true
}

// serveAdmin serves GET /_mock/diagnoses (JSON array) and GET
// /_mock/requests (JSON array), both redacted.
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	var v any
	switch r.URL.Path {
	case "/_mock/diagnoses":
		v = s.Diagnoses()
	case "/_mock/requests":
		v = s.Requests()
	default:
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(append(b, '\n'))
}

// readBody reads at most limit bytes of the body; tooLarge reports that
// there was more.
func readBody(r *http.Request, limit int64) ([]byte, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, false
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if int64(len(b)) > limit {
		return b[:limit], true
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return b, false
	}
	return b, false
}

// queryValue finds a query parameter without allocating a url.Values.
func queryValue(rawQuery, name string) (string, bool) {
	for rawQuery != "" {
		var kv string
		kv, rawQuery, _ = strings.Cut(rawQuery, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k == name {
			return v, true
		}
	}
	return "", false
}

func supportedAPIVersion(v string) bool {
	switch v {
	case "2019-03-31", "2021-06-01", "2021-10-01":
		return true
	}
	return false
}

func isJSONContentType(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// headerSafe removes characters that cannot appear in a header value.
func headerSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			b[i] = ' '
		}
	}
	return string(b)
}
