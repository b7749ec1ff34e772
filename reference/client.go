package reference

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Polling defaults.
const (
	// DefaultRetryAfter is the wait between polls when DPS sends no
	// Retry-After: the Python SDK's DEFAULT_POLLING_INTERVAL of 2 seconds
	// (Azure/azure-iot-sdk-python azure-iot-device/azure/iot/device/provisioning/pipeline/constant.py).
	DefaultRetryAfter = 2 * time.Second
	// MinRetryAfter and MaxRetryAfter bound a Retry-After from the service,
	// as the legacy C SDK does (Azure/azure-iot-sdk-c
	// provisioning_client/inc/azure_prov_client/prov_client_const.h:
	// PROV_GET_THROTTLE_TIME 1, MAX_PROV_GET_THROTTLE_TIME 5*60).
	MinRetryAfter = 1 * time.Second
	MaxRetryAfter = 300 * time.Second
	// DefaultMaxPolls bounds the operation-status lookups of one Register.
	DefaultMaxPolls = 30
	// DefaultTokenTTL is the SAS lifetime when RegisterParams gives neither
	// Expiry nor TTL: the Python SDK's sastoken_ttl of 3600 seconds.
	DefaultTokenTTL = time.Hour
	// maxResponseBody bounds how much of a response body is read (DPS
	// messages are at most 96 KB, MicrosoftDocs/azure-docs includes/iot-dps-limits.md).
	maxResponseBody = 1 << 20
)

// Registration statuses (EnrollmentStatus in Azure/azure-rest-api-specs
// .../DeviceProvisioningServices/stable/2021-10-01/device.json).
const (
	StatusUnassigned = "unassigned"
	StatusAssigning  = "assigning"
	StatusAssigned   = "assigned"
	StatusFailed     = "failed"
	StatusDisabled   = "disabled"
)

// ClientOptions configure a DPS client.
type ClientOptions struct {
	Endpoint   string // host or host:port; "" = DefaultEndpoint
	APIVersion string // "" = DefaultAPIVersion
	Scheme     string // "https" (default) or "http" (a plain mock DPS)
	// HTTPClient sends the requests. nil: a client that trusts RootCAs (or
	// the system roots), speaks HTTP/1.1, and has compression disabled so
	// that no Accept-Encoding header is added. A client given here should
	// have DisableCompression set too, or its requests carry Accept-Encoding.
	HTTPClient *http.Client
	RootCAs    *x509.CertPool
	// DefaultRetryAfter is the wait when a 202 or 429 has no usable
	// Retry-After; 0 = DefaultRetryAfter.
	DefaultRetryAfter time.Duration
	// MinRetryAfter and MaxRetryAfter bound a Retry-After from the service;
	// 0 = MinRetryAfter, MaxRetryAfter.
	MinRetryAfter, MaxRetryAfter time.Duration
	// MaxPolls bounds the follow-up requests of one Register; 0 = DefaultMaxPolls.
	MaxPolls int
	// Wait sleeps between polls; nil = a timer that stops when ctx is done.
	Wait func(ctx context.Context, d time.Duration) error
	// Now gives the time tokens expire from; nil = time.Now.
	Now func() time.Time
}

// Client registers devices with DPS over HTTPS using symmetric keys.
type Client struct {
	opts ClientOptions
	hc   *http.Client
}

// NewClient returns a client for opts.
func NewClient(opts ClientOptions) (*Client, error) {
	if _, err := hostHeader(opts.Endpoint); err != nil {
		return nil, fmt.Errorf("dps client: %w", err)
	}
	switch opts.Scheme {
	case "":
		opts.Scheme = "https"
	case "https", "http":
	default:
		return nil, fmt.Errorf("dps client: scheme %q: want https or http", opts.Scheme)
	}
	if opts.DefaultRetryAfter <= 0 {
		opts.DefaultRetryAfter = DefaultRetryAfter
	}
	if opts.MinRetryAfter <= 0 {
		opts.MinRetryAfter = MinRetryAfter
	}
	if opts.MaxRetryAfter <= 0 {
		opts.MaxRetryAfter = MaxRetryAfter
	}
	if opts.MaxRetryAfter < opts.MinRetryAfter {
		return nil, fmt.Errorf("dps client: MaxRetryAfter %s is below MinRetryAfter %s", opts.MaxRetryAfter, opts.MinRetryAfter)
	}
	if opts.MaxPolls <= 0 {
		opts.MaxPolls = DefaultMaxPolls
	}
	if opts.Wait == nil {
		opts.Wait = sleepCtx
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{
			Transport: &http.Transport{
				Proxy:               http.ProxyFromEnvironment,
				TLSClientConfig:     &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12},
				DisableCompression:  true,
				TLSHandshakeTimeout: 10 * time.Second,
				IdleConnTimeout:     30 * time.Second,
			},
			// The Python SDK's DEFAULT_TIMEOUT_INTERVAL is 30 s.
			Timeout: 30 * time.Second,
		}
	}
	return &Client{opts: opts, hc: hc}, nil
}

// Close releases idle connections of the client's transport.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RegisterParams say which device registers and how it signs.
type RegisterParams struct {
	IDScope        string
	RegistrationID string
	Key            string        // device key (base64); for a group enrollment, DeriveDeviceKey's result
	Expiry         int64         // token expiry, unix seconds; 0 = now + TTL
	TTL            time.Duration // 0 = DefaultTokenTTL
	Dialect        Dialect       // "" = DialectDefault
	KeyName        string        // "" = Dialect.DefaultKeyName()
	OmitKeyName    bool          // send no skn whatever the dialect
	Token          string        // a ready Authorization value; when set Key, Expiry, TTL, Dialect, KeyName are unused
	Payload        json.RawMessage
}

// RegistrationState is DeviceRegistrationResult (device.json).
type RegistrationState struct {
	RegistrationID         string          `json:"registrationId,omitempty"`
	CreatedDateTimeUTC     string          `json:"createdDateTimeUtc,omitempty"`
	AssignedHub            string          `json:"assignedHub,omitempty"`
	DeviceID               string          `json:"deviceId,omitempty"`
	Status                 string          `json:"status,omitempty"`
	Substatus              string          `json:"substatus,omitempty"`
	LastUpdatedDateTimeUTC string          `json:"lastUpdatedDateTimeUtc,omitempty"`
	ETag                   string          `json:"etag,omitempty"`
	ErrorCode              int             `json:"errorCode,omitempty"`
	ErrorMessage           string          `json:"errorMessage,omitempty"`
	Payload                json.RawMessage `json:"payload,omitempty"`
}

// RegistrationResult is the outcome of Register.
type RegistrationResult struct {
	OperationID       string
	Status            string // last status seen: assigned, failed, disabled, unassigned, assigning
	RegistrationState *RegistrationState
	Exchanges         []Exchange // every request sent and its response, in order
}

// Exchange is one request and its response.
type Exchange struct {
	Method     string
	Path       string        // path?query
	Request    []byte        // the request in its wire form (see RegisterRequestBytes)
	Status     int           // HTTP status
	RetryAfter time.Duration // wait applied after this exchange before the next one (0 if none)
	Body       []byte        // response body
}

// ServiceError is an error response from DPS (ProvisioningServiceErrorDetails
// in device.json).
type ServiceError struct {
	StatusCode   int
	ErrorCode    int // extended code, e.g. 401002; its first three digits are the HTTP status
	TrackingID   string
	Message      string
	TimestampUTC string
	Info         map[string]string
	Body         []byte // the raw body
}

func (e *ServiceError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dps: HTTP %d", e.StatusCode)
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteString(" " + t)
	}
	if e.ErrorCode != 0 {
		fmt.Fprintf(&b, ": errorCode %d", e.ErrorCode)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.TrackingID != "" {
		fmt.Fprintf(&b, " (trackingId %s)", e.TrackingID)
	}
	return b.String()
}

// RegistrationError says a registration ended in a status other than assigned.
type RegistrationError struct {
	Status       string
	ErrorCode    int
	ErrorMessage string
}

func (e *RegistrationError) Error() string {
	s := "dps: registration " + e.Status
	if e.ErrorCode != 0 {
		s += fmt.Sprintf(": errorCode %d", e.ErrorCode)
	}
	if e.ErrorMessage != "" {
		s += ": " + e.ErrorMessage
	}
	return s
}

// token returns the Authorization value for p.
func (c *Client) token(p RegisterParams) (string, error) {
	if p.Token != "" {
		return p.Token, nil
	}
	exp := p.Expiry
	if exp == 0 {
		ttl := p.TTL
		if ttl <= 0 {
			ttl = DefaultTokenTTL
		}
		exp = c.opts.Now().Add(ttl).Unix()
	}
	kn := p.KeyName
	if kn == "" {
		kn = p.Dialect.DefaultKeyName()
	}
	if p.OmitKeyName {
		kn = ""
	}
	s, err := NewSAS(SASParams{Dialect: p.Dialect, IDScope: p.IDScope, RegistrationID: p.RegistrationID,
		Key: p.Key, Expiry: exp, KeyName: kn})
	if err != nil {
		return "", err
	}
	return s.Token, nil
}

func (c *Client) requestParams(p RegisterParams, token string) RequestParams {
	return RequestParams{Endpoint: c.opts.Endpoint, APIVersion: c.opts.APIVersion, IDScope: p.IDScope,
		RegistrationID: p.RegistrationID, Token: token, Payload: p.Payload}
}

type requestKind int

const (
	kindRegister requestKind = iota
	kindOperation
	kindStatus
)

// send builds, sends and records one request.
func (c *Client) send(ctx context.Context, kind requestKind, rp RequestParams) (*Exchange, http.Header, error) {
	var method, op string
	switch kind {
	case kindRegister:
		method, op = http.MethodPut, "register"
	case kindOperation:
		method, op = http.MethodGet, "operation"
	default:
		method, op = http.MethodPost, "status"
	}
	r, err := rp.build(method, op)
	if err != nil {
		return nil, nil, err
	}
	req, err := r.httpRequest(c.opts.Scheme)
	if err != nil {
		return nil, nil, err
	}
	req = req.WithContext(ctx)
	ex := &Exchange{Method: method, Path: r.target, Request: r.wire()}
	resp, err := c.hc.Do(req)
	if err != nil {
		return ex, nil, fmt.Errorf("dps: %s %s: %w", method, r.target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return ex, nil, fmt.Errorf("dps: %s %s: read response: %w", method, r.target, err)
	}
	ex.Status, ex.Body = resp.StatusCode, body
	return ex, resp.Header, nil
}

// retryAfter reads a Retry-After in its delay-seconds form, bounded to
// [MinRetryAfter, MaxRetryAfter]; absent or not a number (the HTTP-date form
// is not used by DPS) gives DefaultRetryAfter.
func (c *Client) retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	n, err := strconv.Atoi(v)
	if v == "" || err != nil || n < 0 {
		return c.opts.DefaultRetryAfter
	}
	d := time.Duration(n) * time.Second
	return min(max(d, c.opts.MinRetryAfter), c.opts.MaxRetryAfter)
}

// wait sleeps d unless that would pass ctx's deadline.
func (c *Client) wait(ctx context.Context, d time.Duration) error {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return fmt.Errorf("dps: next request in %s would pass the deadline: %w", d, context.DeadlineExceeded)
	}
	return c.opts.Wait(ctx, d)
}

// operationStatus is RegistrationOperationStatus (device.json).
type operationStatus struct {
	OperationID       string             `json:"operationId"`
	Status            string             `json:"status"`
	RegistrationState *RegistrationState `json:"registrationState"`
}

// Register registers a device: PUT .../register, then GET
// .../operations/{operationId} while the status is "assigning", waiting
// Retry-After between requests; 429 and 5xx are retried the same way. It
// returns the result so far with any error; the error is a *ServiceError for
// an error response, a *RegistrationError when the registration ends in a
// status other than assigned.
func (c *Client) Register(ctx context.Context, p RegisterParams) (*RegistrationResult, error) {
	tok, err := c.token(p)
	if err != nil {
		return nil, fmt.Errorf("dps register: %w", err)
	}
	rp := c.requestParams(p, tok)
	res := &RegistrationResult{}
	kind := kindRegister
	for n := 0; ; n++ {
		ex, h, err := c.send(ctx, kind, rp)
		if ex != nil {
			res.Exchanges = append(res.Exchanges, *ex)
		}
		if err != nil {
			return res, err
		}
		switch {
		case ex.Status == http.StatusOK || ex.Status == http.StatusAccepted:
			var os operationStatus
			if err := json.Unmarshal(ex.Body, &os); err != nil {
				return res, fmt.Errorf("dps: %s %s: HTTP %d with a body that is not an operation status: %w", ex.Method, ex.Path, ex.Status, err)
			}
			if os.OperationID != "" {
				res.OperationID = os.OperationID
			}
			res.Status = os.Status
			if os.RegistrationState != nil {
				res.RegistrationState = os.RegistrationState
			}
			final := os.Status == StatusAssigned || os.Status == StatusFailed || os.Status == StatusDisabled
			if final || ex.Status == http.StatusOK && os.Status != StatusAssigning {
				return res, finalError(res)
			}
			if res.OperationID == "" {
				return res, fmt.Errorf("dps: %s %s: HTTP %d without an operationId", ex.Method, ex.Path, ex.Status)
			}
			kind, rp.OperationID = kindOperation, res.OperationID
		case ex.Status == http.StatusTooManyRequests || ex.Status >= 500:
			// Transient: the same request again after Retry-After.
		default:
			return res, serviceError(ex.Status, ex.Body)
		}
		if n >= c.opts.MaxPolls {
			return res, fmt.Errorf("dps: registration still %q after %d requests", res.Status, n+1)
		}
		d := c.retryAfter(h)
		res.Exchanges[len(res.Exchanges)-1].RetryAfter = d
		if err := c.wait(ctx, d); err != nil {
			return res, fmt.Errorf("dps: waiting to poll: %w", err)
		}
	}
}

func finalError(res *RegistrationResult) error {
	if res.Status == StatusAssigned {
		return nil
	}
	e := &RegistrationError{Status: res.Status}
	if s := res.RegistrationState; s != nil {
		e.ErrorCode, e.ErrorMessage = s.ErrorCode, s.ErrorMessage
	}
	return e
}

// RegistrationStatus looks up a device's registration: POST
// /{idScope}/registrations/{registrationId}. It returns the
// DeviceRegistrationResult, or a *ServiceError.
func (c *Client) RegistrationStatus(ctx context.Context, p RegisterParams) (*RegistrationState, []Exchange, error) {
	tok, err := c.token(p)
	if err != nil {
		return nil, nil, fmt.Errorf("dps registration status: %w", err)
	}
	ex, _, err := c.send(ctx, kindStatus, c.requestParams(p, tok))
	var exs []Exchange
	if ex != nil {
		exs = append(exs, *ex)
	}
	if err != nil {
		return nil, exs, err
	}
	if ex.Status != http.StatusOK {
		return nil, exs, serviceError(ex.Status, ex.Body)
	}
	var st RegistrationState
	if err := json.Unmarshal(ex.Body, &st); err != nil {
		return nil, exs, fmt.Errorf("dps: registration status: body is not a registration result: %w", err)
	}
	return &st, exs, nil
}

// serviceError decodes an error body. A body that is not the documented JSON
// still gives a *ServiceError with the status and the raw body.
func serviceError(status int, body []byte) *ServiceError {
	e := &ServiceError{StatusCode: status, Body: body}
	var raw struct {
		ErrorCode    json.RawMessage            `json:"errorCode"`
		TrackingID   string                     `json:"trackingId"`
		Message      string                     `json:"message"`
		TimestampUTC string                     `json:"timestampUtc"`
		Info         map[string]json.RawMessage `json:"info"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		e.Message = strings.TrimSpace(string(bytes.ToValidUTF8(body[:min(len(body), 200)], nil)))
		return e
	}
	e.TrackingID, e.Message, e.TimestampUTC = raw.TrackingID, raw.Message, raw.TimestampUTC
	code := strings.Trim(string(raw.ErrorCode), `"`)
	if n, err := strconv.Atoi(code); err == nil {
		e.ErrorCode = n
	}
	if len(raw.Info) > 0 {
		e.Info = make(map[string]string, len(raw.Info))
		for k, v := range raw.Info {
			var s string
			if json.Unmarshal(v, &s) != nil {
				s = string(v)
			}
			e.Info[k] = s
		}
	}
	return e
}

// IsServiceError reports whether err is (or wraps) a *ServiceError, and returns it.
func IsServiceError(err error) (*ServiceError, bool) {
	var se *ServiceError
	ok := errors.As(err, &se)
	return se, ok
}
