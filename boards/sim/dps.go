package sim

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hiltest/hiltest/protocol"
)

const (
	defaultDPSHost    = "global.azure-devices-provisioning.net"
	defaultAPIVersion = "2021-06-01"
	// Retry-After handling (PROTOCOL.md DPS.REGISTER): 2 s when absent, at
	// most 300 s (MAX_PROV_GET_THROTTLE_TIME in azure-iot-sdk-c
	// provisioning_client/inc/azure_prov_client/prov_client_const.h).
	defaultRetryAfter = 2
	maxRetryAfter     = 300
)

func (w *worker) dpsConfig(a *args) ([]protocol.Arg, error) {
	if err := a.allow("host", "port", "api_version"); err != nil {
		return nil, err
	}
	host, port, ver := w.s.dpsHost, w.s.dpsPort, w.s.apiVersion
	if a.has("host") {
		host = a.str("host")
		if host == "" || strings.ContainsAny(host, "/?#@ \t\r\n") || len(host) > 253 {
			return nil, badArg("host", "host %q: want a DNS name or an IP address", host)
		}
	}
	if a.has("port") {
		p, err := a.int("port", 443, 1, 65535)
		if err != nil {
			return nil, err
		}
		port = int(p)
	}
	if a.has("api_version") {
		ver = a.str("api_version")
		if ver == "" || strings.ContainsAny(ver, "&#?/ %") {
			return nil, badArg("api_version", "api version %q is not usable in a query", ver)
		}
	}
	w.s.dpsHost, w.s.dpsPort, w.s.apiVersion = host, port, ver
	w.log('I', "dps", "endpoint %s:%d api-version %s", host, port, ver)
	return []protocol.Arg{protocol.String("host", host), protocol.Int("port", int64(port)), protocol.String("api_version", ver)}, nil
}

// dpsInput is what DPS.REQUEST and DPS.REGISTER share.
type dpsInput struct {
	scope, regID string
	token        string
	payload      []byte
}

func (w *worker) dpsArgs(a *args, extra ...string) (dpsInput, error) {
	var in dpsInput
	if err := a.allow(append([]string{"id_scope", "reg_id", "key", "group_key", "expiry", "ttl", "payload"}, extra...)...); err != nil {
		return in, err
	}
	var err error
	if in.scope, err = a.need("id_scope"); err != nil {
		return in, err
	}
	if err := validScope(in.scope); err != nil {
		return in, badArg("id_scope", "%v", err)
	}
	if in.regID, err = a.need("reg_id"); err != nil {
		return in, err
	}
	if err := validRegID(in.regID); err != nil {
		return in, badArg("reg_id", "%v", err)
	}
	var key string
	switch {
	case a.has("key") && a.has("group_key"):
		return in, badArg("group_key", "give either key or group_key, not both")
	case a.has("key"):
		key = a.str("key")
	case a.has("group_key"):
		if w.b.bugs[BugGroupKeySigning] {
			key = a.str("group_key")
		} else if key, err = w.deriveKey("group_key", a.str("group_key"), in.regID); err != nil {
			return in, err
		}
	default:
		return in, badArg("key", "missing argument \"key\" (or \"group_key\")")
	}
	se, err := w.expiry(a)
	if err != nil {
		return in, err
	}
	if a.has("payload") {
		in.payload = a.v["payload"]
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(in.payload, &obj); err != nil || obj == nil {
			return in, badArg("payload", "payload is not a JSON object")
		}
	}
	t, err := w.tokenFor(in.scope, in.regID, "", key, se, defaultPolicy(w.b.cfg.Dialect))
	if err != nil {
		if ae, ok := err.(*argError); ok && a.has("group_key") {
			ae.arg = "group_key"
		}
		return in, err
	}
	in.token = t.token
	return in, nil
}

// hostHeader is the Host value: the host, ":port" appended unless 443.
func (s *session) hostHeader() string {
	h := s.dpsHost
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if s.dpsPort != 443 {
		h += ":" + strconv.Itoa(s.dpsPort)
	}
	return h
}

func (w *worker) apiVersion() string {
	if w.b.bugs[BugWrongAPIVersion] {
		return WrongAPIVersion
	}
	return w.s.apiVersion
}

// registerBytes is the register request exactly as the board sends it.
func (w *worker) registerBytes(in dpsInput) []byte {
	body := `{"registrationId":"` + in.regID
	if w.b.bugs[BugBodyIDMismatch] {
		body += " "
	}
	body += `"`
	if len(in.payload) > 0 {
		body += `,"payload":` + string(in.payload)
	}
	body += "}"
	var b strings.Builder
	b.WriteString("PUT /" + in.scope + "/registrations/" + in.regID + "/register?api-version=" + w.apiVersion() + " HTTP/1.1\r\n")
	b.WriteString("Host: " + w.s.hostHeader() + "\r\n")
	b.WriteString("Content-Type: application/json\r\n")
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	b.WriteString("Authorization: " + in.token + "\r\n\r\n")
	b.WriteString(body)
	return []byte(b.String())
}

// pollBytes is the operation status request.
func (w *worker) pollBytes(in dpsInput, op string) []byte {
	return []byte("GET /" + in.scope + "/registrations/" + in.regID + "/operations/" + op + "?api-version=" + w.apiVersion() + " HTTP/1.1\r\n" +
		"Host: " + w.s.hostHeader() + "\r\n" +
		"Authorization: " + in.token + "\r\n\r\n")
}

func (w *worker) dpsRequest(a *args) ([]protocol.Arg, error) {
	in, err := w.dpsArgs(a)
	if err != nil {
		return nil, err
	}
	return []protocol.Arg{protocol.Bytes("request", w.registerBytes(in))}, nil
}

// dpsStatus is the JSON of a DPS answer (RegistrationOperationStatus or
// ProvisioningServiceErrorDetails).
type dpsStatus struct {
	OperationID       string `json:"operationId"`
	Status            string `json:"status"`
	RegistrationState *struct {
		AssignedHub  string `json:"assignedHub"`
		DeviceID     string `json:"deviceId"`
		Status       string `json:"status"`
		ErrorCode    *int64 `json:"errorCode"`
		ErrorMessage string `json:"errorMessage"`
	} `json:"registrationState"`
	ErrorCode *int64 `json:"errorCode"`
	Message   string `json:"message"`
}

// dpsConn is a TLS connection to DPS kept alive across polls.
type dpsConn struct {
	c  *tls.Conn
	br *bufio.Reader
}

func (w *worker) dial(ctx context.Context) (*dpsConn, error) {
	addr := net.JoinHostPort(w.s.dpsHost, strconv.Itoa(w.s.dpsPort))
	d := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: 10 * time.Second},
		Config: &tls.Config{RootCAs: w.s.roots, ServerName: w.s.dpsHost, MinVersion: tls.VersionTLS12,
			ClientSessionCache: w.s.tlsCache},
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		var cv *tls.CertificateVerificationError
		var ua x509.UnknownAuthorityError
		var hn x509.HostnameError
		var ci x509.CertificateInvalidError
		var ra tls.AlertError
		switch {
		case ctx.Err() != nil:
			return nil, failure(protocol.CodeTimeout, "connect %s: %v", addr, err)
		case errors.As(err, &cv), errors.As(err, &ua), errors.As(err, &hn), errors.As(err, &ci), errors.As(err, &ra),
			strings.Contains(err.Error(), "tls:"):
			w.log('E', "esp-tls", "TLS handshake with %s failed: %v", addr, err)
			return nil, failure(protocol.CodeTLS, "TLS handshake with %s: %v", addr, err)
		}
		w.log('E', "esp-tls", "connect %s failed: %v", addr, err)
		return nil, failure(protocol.CodeNetwork, "connect %s: %v", addr, err)
	}
	tc := c.(*tls.Conn)
	how := "new session"
	if tc.ConnectionState().DidResume {
		how = "session resumed"
	}
	w.log('I', "esp-tls", "connected to %s (%s)", addr, how)
	return &dpsConn{c: tc, br: bufio.NewReader(c)}, nil
}

// exchange writes req and reads one response.
func (w *worker) exchange(ctx context.Context, dc *dpsConn, req []byte) (*http.Response, []byte, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = dc.c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = dc.c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := dc.c.Write(req); err != nil {
		return nil, nil, err
	}
	resp, err := http.ReadResponse(dc.br, nil)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return nil, nil, err
	}
	return resp, body, nil
}

func (w *worker) dpsRegister(a *args) ([]protocol.Arg, error) {
	in, err := w.dpsArgs(a, "timeout")
	if err != nil {
		return nil, err
	}
	timeout, err := a.int("timeout", 60, 1, 3600)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(w.ctx, time.Duration(timeout)*time.Second)
	defer cancel()

	var (
		op, status, hub, devID, errCode, errMsg string
		httpList, retryList                     []string
		dc                                      *dpsConn
	)
	defer func() {
		if dc != nil {
			dc.c.Close()
		}
	}()
	req := w.registerBytes(in)
	method := "PUT"
	path := "/" + in.scope + "/registrations/" + in.regID + "/register"
	for step := 1; ; step++ {
		if dc == nil {
			if dc, err = w.dial(ctx); err != nil {
				if step > 1 && ctx.Err() != nil && w.ctx.Err() == nil {
					break // timeout while polling: report "assigning"
				}
				return nil, err
			}
		}
		resp, body, err := w.exchange(ctx, dc, req)
		if err != nil {
			dc.c.Close()
			dc = nil
			if ctx.Err() != nil {
				if w.ctx.Err() != nil {
					return nil, failure(protocol.CodeInternal, "cut off")
				}
				if step > 1 {
					break
				}
				return nil, failure(protocol.CodeTimeout, "no answer from DPS within %ds", timeout)
			}
			if step > 1 {
				// The server closed an idle keep-alive connection: reconnect once.
				if dc, err = w.dial(ctx); err == nil {
					resp, body, err = w.exchange(ctx, dc, req)
				}
			}
			if err != nil {
				var ae *argError
				if errors.As(err, &ae) {
					return nil, err
				}
				w.log('E', "dps", "%s %s: %v", method, path, err)
				return nil, failure(protocol.CodeNetwork, "%s %s: %v", method, path, err)
			}
		}
		httpList = append(httpList, strconv.Itoa(resp.StatusCode))
		ra, hasRA := resp.Header["Retry-After"]
		if hasRA && len(ra) > 0 {
			retryList = append(retryList, ra[0])
		}
		w.log('I', "dps", "%s %s -> %d", method, path, resp.StatusCode)
		var st dpsStatus
		jerr := json.Unmarshal(body, &st)
		switch {
		case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusAccepted:
			if jerr != nil {
				errMsg = "answer is not JSON: " + jerr.Error()
				status = "failed"
			} else {
				if st.OperationID != "" {
					op = st.OperationID
				}
				status = st.Status
				if status == "" {
					status = "failed"
				}
				if rs := st.RegistrationState; rs != nil {
					hub, devID = rs.AssignedHub, rs.DeviceID
					if rs.ErrorCode != nil {
						errCode = strconv.FormatInt(*rs.ErrorCode, 10)
					}
					errMsg = rs.ErrorMessage
				}
			}
		default:
			status = "failed"
			if jerr == nil {
				if st.ErrorCode != nil {
					errCode = strconv.FormatInt(*st.ErrorCode, 10)
				}
				errMsg = st.Message
			} else if len(body) > 0 {
				errMsg = strings.TrimSpace(string(body[:min(len(body), 200)]))
			}
		}
		w.event(protocol.EventProgress, protocol.String("verb", protocol.VerbDPSRegister),
			protocol.Int("step", int64(step)), protocol.String("status", status),
			protocol.Int("http", int64(resp.StatusCode)))
		if resp.Close && dc != nil {
			dc.c.Close()
			dc = nil
		}
		if status != "assigning" {
			break
		}
		if op == "" {
			status, errMsg = "failed", "DPS answered assigning without an operationId"
			break
		}
		wait := retryAfter(ra)
		if w.b.bugs[BugIgnoreRetryAfter] {
			wait = TightPoll
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		if ctx.Err() != nil {
			if w.ctx.Err() != nil {
				return nil, failure(protocol.CodeInternal, "cut off")
			}
			break
		}
		req = w.pollBytes(in, op)
		method, path = "GET", "/"+in.scope+"/registrations/"+in.regID+"/operations/"+op
	}
	if status == "assigned" {
		w.log('I', "dps", "assigned to %s as %s", hub, devID)
	} else {
		w.log('W', "dps", "registration %s: %s %s", status, errCode, errMsg)
	}
	res := []protocol.Arg{
		protocol.String("op", op),
		protocol.String("status", status),
		protocol.String("hub", hub),
		protocol.String("device_id", devID),
		protocol.String("http", strings.Join(httpList, ",")),
		protocol.String("retry_after", strings.Join(retryList, ",")),
	}
	if errCode != "" {
		res = append(res, protocol.String("error_code", errCode))
	}
	if errMsg != "" {
		res = append(res, protocol.String("error_msg", errMsg))
	}
	return res, nil
}

// retryAfter turns a Retry-After header into the wait: delay-seconds only,
// 2 s when absent or not a number, at most 300 s.
func retryAfter(v []string) time.Duration {
	s := defaultRetryAfter
	if len(v) > 0 {
		if n, err := strconv.Atoi(strings.TrimSpace(v[0])); err == nil && n >= 0 {
			s = min(n, maxRetryAfter)
		}
	}
	return time.Duration(s) * time.Second
}
