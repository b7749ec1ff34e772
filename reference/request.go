package reference

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// DefaultEndpoint is the global DPS device endpoint
// (Azure/azure-rest-api-specs .../DeviceProvisioningServices/stable/2021-10-01/device.json, host).
const DefaultEndpoint = "global.azure-devices-provisioning.net"

// DefaultAPIVersion is the api-version sent when none is given: the one the
// legacy C SDK uses (Azure/azure-iot-sdk-c
// provisioning_client/inc/azure_prov_client/prov_client_const.h PROV_API_VERSION)
// and the raw-HTTPS how-to's worked examples.
const DefaultAPIVersion = "2021-06-01"

// SupportedAPIVersions are the device API versions in use by official
// clients: 2019-03-31 (azure-sdk-for-c, Python SDK), 2021-06-01 (legacy C
// SDK), 2021-10-01 (stable swagger). All share paths and core JSON.
func SupportedAPIVersions() []string {
	return []string{"2019-03-31", "2021-06-01", "2021-10-01"}
}

// RequestParams are the inputs of the DPS request builders.
type RequestParams struct {
	Endpoint       string          // host or host:port; "" = DefaultEndpoint
	APIVersion     string          // "" = DefaultAPIVersion
	IDScope        string          // id scope
	RegistrationID string          // registration id
	OperationID    string          // for the operation-status request
	Token          string          // full Authorization value
	Payload        json.RawMessage // optional custom payload, sent verbatim
}

// request is a built DPS request: everything both the wire form and the
// *http.Request are made from.
type request struct {
	method string
	host   string // Host header value
	target string // path?query
	auth   string
	body   []byte // nil: no body, no Content-Type/Content-Length
}

func (p RequestParams) build(method, op string) (request, error) {
	host, err := hostHeader(p.Endpoint)
	if err != nil {
		return request{}, err
	}
	v := p.APIVersion
	if v == "" {
		v = DefaultAPIVersion
	}
	if err := checkPathPiece("api version", v); err != nil {
		return request{}, err
	}
	if err := ValidateIDScope(p.IDScope); err != nil {
		return request{}, err
	}
	if err := ValidateRegistrationID(p.RegistrationID); err != nil {
		return request{}, err
	}
	if p.Token == "" {
		return request{}, errors.New("authorization token is empty")
	}
	if strings.ContainsAny(p.Token, "\r\n") {
		return request{}, errors.New("authorization token contains a line break")
	}
	if strings.Trim(p.Token, " \t") != p.Token {
		// HTTP drops whitespace around a header value: it cannot be sent.
		return request{}, errors.New("authorization token starts or ends with whitespace")
	}
	path := "/" + p.IDScope + "/registrations/" + p.RegistrationID
	r := request{method: method, host: host, auth: p.Token}
	switch op {
	case "register":
		path += "/register"
	case "operation":
		if p.OperationID == "" {
			return request{}, errors.New("operation id is empty")
		}
		if err := checkPathPiece("operation id", p.OperationID); err != nil {
			return request{}, err
		}
		path += "/operations/" + p.OperationID
	}
	if op != "operation" {
		b, err := registrationBody(p.RegistrationID, p.Payload)
		if err != nil {
			return request{}, err
		}
		r.body = b
	}
	r.target = path + "?api-version=" + v
	return r, nil
}

// registrationBody is {"registrationId":"id"} or
// {"registrationId":"id","payload":<payload verbatim>}.
func registrationBody(id string, payload json.RawMessage) ([]byte, error) {
	b := make([]byte, 0, 32+len(id)+len(payload))
	b = append(b, `{"registrationId":"`...)
	b = append(b, id...) // validated: no character needs JSON escaping
	b = append(b, '"')
	if len(payload) > 0 {
		if !json.Valid(payload) {
			return nil, errors.New("payload is not valid JSON")
		}
		b = append(b, `,"payload":`...)
		b = append(b, payload...)
	}
	return append(b, '}'), nil
}

// hostHeader returns the Host header for an endpoint: the host, plus ":port"
// only when the port is not 443.
func hostHeader(endpoint string) (string, error) {
	if endpoint == "" {
		return DefaultEndpoint, nil
	}
	if strings.ContainsAny(endpoint, "/?#@ \t\r\n") {
		return "", fmt.Errorf("endpoint %q: want host or host:port", endpoint)
	}
	host, port, err := net.SplitHostPort(endpoint)
	if err != nil {
		if strings.Count(endpoint, ":") == 0 {
			return endpoint, nil
		}
		return "", fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	if host == "" {
		return "", fmt.Errorf("endpoint %q: empty host", endpoint)
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return "", fmt.Errorf("endpoint %q: bad port %q", endpoint, port)
	}
	if port == "443" {
		if strings.Contains(host, ":") {
			return "[" + host + "]", nil
		}
		return host, nil
	}
	return endpoint, nil
}

func checkPathPiece(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if url.PathEscape(s) != s || strings.ContainsAny(s, "&=+") {
		return fmt.Errorf("%s %q contains characters that need escaping in a URL", what, s)
	}
	return nil
}

// wire writes the request exactly as specified (protocol/PROTOCOL.md): request
// line, Host, then for requests with a body Content-Type and Content-Length,
// then Authorization, a blank line and the body.
func (r request) wire() []byte {
	var b bytes.Buffer
	b.Grow(160 + len(r.auth) + len(r.body))
	b.WriteString(r.method + " " + r.target + " HTTP/1.1\r\n")
	b.WriteString("Host: " + r.host + "\r\n")
	if r.body != nil {
		b.WriteString("Content-Type: application/json\r\n")
		b.WriteString("Content-Length: " + strconv.Itoa(len(r.body)) + "\r\n")
	}
	b.WriteString("Authorization: " + r.auth + "\r\n\r\n")
	b.Write(r.body)
	return b.Bytes()
}

// httpRequest builds the *http.Request for scheme ("https" or "http"). Go's
// client writes headers in its own order; the canonical form (ParseRequest,
// CanonicalFromHTTP) makes the two comparable. User-Agent is set to the empty
// string so that net/http leaves it out.
func (r request) httpRequest(scheme string) (*http.Request, error) {
	var body *bytes.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	u := scheme + "://" + r.host + r.target
	var req *http.Request
	var err error
	if body != nil {
		req, err = http.NewRequest(r.method, u, body)
	} else {
		req, err = http.NewRequest(r.method, u, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("build %s request: %w", r.method, err)
	}
	req.Host = r.host
	req.Header = http.Header{}
	req.Header["User-Agent"] = []string{""}
	if r.body != nil {
		req.Header["Content-Type"] = []string{"application/json"}
		req.ContentLength = int64(len(r.body))
	}
	req.Header["Authorization"] = []string{r.auth}
	return req, nil
}

// RegisterRequest builds the register request:
// PUT /{idScope}/registrations/{registrationId}/register?api-version={v}
// with the body {"registrationId":"..."[,"payload":...]}.
func RegisterRequest(p RequestParams) (*http.Request, error) {
	r, err := p.build(http.MethodPut, "register")
	if err != nil {
		return nil, fmt.Errorf("register request: %w", err)
	}
	return r.httpRequest("https")
}

// RegisterRequestBytes is RegisterRequest as wire bytes.
func RegisterRequestBytes(p RequestParams) ([]byte, error) {
	r, err := p.build(http.MethodPut, "register")
	if err != nil {
		return nil, fmt.Errorf("register request: %w", err)
	}
	return r.wire(), nil
}

// OperationStatusRequest builds the operation status lookup:
// GET /{idScope}/registrations/{registrationId}/operations/{operationId}?api-version={v}
// with Host and Authorization only.
func OperationStatusRequest(p RequestParams) (*http.Request, error) {
	r, err := p.build(http.MethodGet, "operation")
	if err != nil {
		return nil, fmt.Errorf("operation status request: %w", err)
	}
	return r.httpRequest("https")
}

// OperationStatusRequestBytes is OperationStatusRequest as wire bytes.
func OperationStatusRequestBytes(p RequestParams) ([]byte, error) {
	r, err := p.build(http.MethodGet, "operation")
	if err != nil {
		return nil, fmt.Errorf("operation status request: %w", err)
	}
	return r.wire(), nil
}

// RegistrationStatusRequest builds the device registration status lookup:
// POST /{idScope}/registrations/{registrationId}?api-version={v}, same headers
// and body as the register request.
func RegistrationStatusRequest(p RequestParams) (*http.Request, error) {
	r, err := p.build(http.MethodPost, "status")
	if err != nil {
		return nil, fmt.Errorf("registration status request: %w", err)
	}
	return r.httpRequest("https")
}

// RegistrationStatusRequestBytes is RegistrationStatusRequest as wire bytes.
func RegistrationStatusRequestBytes(p RequestParams) ([]byte, error) {
	r, err := p.build(http.MethodPost, "status")
	if err != nil {
		return nil, fmt.Errorf("registration status request: %w", err)
	}
	return r.wire(), nil
}
