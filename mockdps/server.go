package mockdps

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for Options fields left zero.
const (
	// DefaultRetryAfter is the Retry-After DPS sends with 202 (seconds):
	// MicrosoftDocs/azure-docs articles/iot-dps/iot-dps-https-sym-key-support.md
	// ("Retry-After: 3") and the MQTT topic "...res/202/?$rid=1&retry-after=3"
	// quoted in Azure/azure-sdk-for-c sdk/src/azure/iot/az_iot_provisioning_client.c.
	DefaultRetryAfter = 3
	// RetryImmediately as Options.RetryAfter sends "Retry-After: 0".
	RetryImmediately = -1
	// DefaultMaxBodyBytes caps request bodies (413 above it).
	DefaultMaxBodyBytes = 64 << 10
	// DefaultMaxRequests is how many requests and diagnoses are kept in memory.
	DefaultMaxRequests = 10000
	// DefaultMaxTokenLifetime: a token whose se is further ahead is rejected
	// as implausible (expiry-too-far).
	DefaultMaxTokenLifetime = 365 * 24 * time.Hour
)

// Options configure a mock DPS. The zero value serves DemoEnrollments over
// HTTPS on 127.0.0.1 with a random port.
type Options struct {
	// Listen is the address to listen on; "" = "127.0.0.1:0".
	Listen string
	// Enrollments served; nil = DemoEnrollments().
	Enrollments *Enrollments
	// AssignDelay is how long after the register request the operation
	// stays "assigning"; 0 = assigned at the first poll.
	AssignDelay time.Duration
	// RetryAfter is the Retry-After (seconds) sent with 202 responses;
	// 0 = DefaultRetryAfter (3, as DPS), RetryImmediately = 0 seconds.
	RetryAfter int
	// Plain serves HTTP instead of HTTPS.
	Plain bool
	// SANs are extra DNS names or IP addresses for the server certificate.
	SANs []string
	// Explain adds the diagnosis of a rejected request to its response in
	// the header x-hiltest-diagnosis.
	Explain bool
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// ClockSkew is how far past its se a token is still accepted.
	ClockSkew time.Duration
	// MaxTokenLifetime: tokens with se later than now+MaxTokenLifetime are
	// rejected (expiry-too-far); 0 = DefaultMaxTokenLifetime, <0 = no limit.
	MaxTokenLifetime time.Duration
	// CapturePath, when set, receives one redacted JSON line per request,
	// written (and so flushed) as each request completes.
	CapturePath string
	// CaptureWriter is an alternative to CapturePath.
	CaptureWriter io.Writer
	// MaxRequests bounds the requests and diagnoses kept in memory (the
	// latest are kept); 0 = DefaultMaxRequests, <0 = keep none.
	MaxRequests int
	// MaxBodyBytes caps request bodies; 0 = DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// RateLimit is the number of DPS requests per second accepted over all
	// clients before answering 429; 0 = unlimited. RateBurst is the bucket
	// size (0 = max(1, RateLimit)). ThrottleRetryAfter is the Retry-After
	// of a 429 in seconds (0 = DefaultRetryAfter).
	RateLimit          float64
	RateBurst          int
	ThrottleRetryAfter int
	// Faults is the initial fault mode (see SetFault).
	Faults Fault
	// Timeouts of the HTTP server; 0 = 10s, 30s, 30s and 120s.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// Logf, when set, receives server errors (TLS handshake failures, ...).
	Logf func(format string, args ...any)
}

// Server is a running mock DPS.
type Server struct {
	opts     Options
	enr      *enrollIndex
	now      func() time.Time
	certs    *certs
	pool     *x509.CertPool
	ln       net.Listener
	srv      *http.Server
	url      string
	state    *registry
	requests capLog[Request]
	diags    capLog[Diagnosis]
	limiter  *limiter
	fault    atomic.Pointer[faultState]

	captureMu sync.Mutex
	capture   io.Writer
	capFile   *os.File

	serveDone chan struct{}
	serveErr  error
	closeOnce sync.Once
	closeErr  error

	sharedMu     sync.Mutex
	sharedClient *http.Client
}

// Start starts a mock DPS and returns once it accepts connections.
func Start(opts Options) (*Server, error) {
	if opts.Enrollments == nil {
		opts.Enrollments = DemoEnrollments()
	}
	if err := opts.Enrollments.Validate(); err != nil {
		return nil, fmt.Errorf("mockdps: %w", err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RetryAfter == 0 {
		opts.RetryAfter = DefaultRetryAfter
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxRequests == 0 {
		opts.MaxRequests = DefaultMaxRequests
	}
	if opts.MaxTokenLifetime == 0 {
		opts.MaxTokenLifetime = DefaultMaxTokenLifetime
	}
	if opts.ThrottleRetryAfter <= 0 {
		opts.ThrottleRetryAfter = DefaultRetryAfter
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	enr, err := indexEnrollments(opts.Enrollments)
	if err != nil {
		return nil, fmt.Errorf("mockdps: %w", err)
	}
	s := &Server{
		opts:      opts,
		enr:       enr,
		now:       opts.Now,
		state:     newRegistry(),
		serveDone: make(chan struct{}),
		limiter:   newLimiter(opts.RateLimit, opts.RateBurst, opts.Now),
	}
	s.requests.max = max(opts.MaxRequests, 0)
	s.requests.fix = (*Request).complete
	s.diags.max = max(opts.MaxRequests, 0)
	s.SetFault(opts.Faults)

	var tlsCfg *tls.Config
	if !opts.Plain {
		c, err := newCerts(opts.SANs, opts.Now())
		if err != nil {
			return nil, fmt.Errorf("mockdps: %w", err)
		}
		s.certs = c
		s.pool = x509.NewCertPool()
		s.pool.AddCert(c.caCert)
		tlsCfg = &tls.Config{
			Certificates: []tls.Certificate{c.server},
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"http/1.1"},
			// Classic groups only: the boards' TLS stacks (mbedTLS) offer
			// no hybrid post-quantum group, and an X25519MLKEM768 key
			// exchange costs each handshake several KB of allocations.
			CurvePreferences: mockCurves(),
		}
	}
	if opts.CapturePath != "" {
		f, err := os.OpenFile(opts.CapturePath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, fmt.Errorf("mockdps: capture file: %w", err)
		}
		s.capFile, s.capture = f, f
	} else if opts.CaptureWriter != nil {
		s.capture = opts.CaptureWriter
	}

	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		if s.capFile != nil {
			_ = s.capFile.Close()
		}
		return nil, fmt.Errorf("mockdps: listen %s: %w", opts.Listen, err)
	}
	s.ln = &recListener{Listener: ln, cfg: tlsCfg}
	scheme := "https"
	if opts.Plain {
		scheme = "http"
	}
	s.url = scheme + "://" + urlHost(ln.Addr().(*net.TCPAddr))

	dur := func(d, def time.Duration) time.Duration {
		if d > 0 {
			return d
		}
		return def
	}
	errLog := log.New(io.Discard, "", 0)
	if opts.Logf != nil {
		errLog = log.New(logfWriter(opts.Logf), "", 0)
	}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: dur(opts.ReadHeaderTimeout, 10*time.Second),
		ReadTimeout:       dur(opts.ReadTimeout, 30*time.Second),
		WriteTimeout:      dur(opts.WriteTimeout, 30*time.Second),
		IdleTimeout:       dur(opts.IdleTimeout, 120*time.Second),
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          errLog,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if rc, ok := c.(*recConn); ok {
				return context.WithValue(ctx, connKey{}, rc)
			}
			return ctx
		},
	}
	// HTTP/2 stays off: the listener hands net/http wrapped conns, and DPS
	// clients on devices speak HTTP/1.1.
	s.srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	go func() {
		defer close(s.serveDone)
		err := s.srv.Serve(s.ln)
		if !errors.Is(err, http.ErrServerClosed) {
			s.serveErr = err
		}
	}()
	return s, nil
}

type logfWriter func(format string, args ...any)

func (f logfWriter) Write(p []byte) (int, error) {
	f("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func urlHost(a *net.TCPAddr) string {
	ip := a.IP
	if ip == nil || ip.IsUnspecified() {
		if ip != nil && ip.To4() == nil {
			ip = net.IPv6loopback
		} else {
			ip = net.IPv4(127, 0, 0, 1)
		}
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(a.Port))
}

// URL is the base URL, e.g. "https://127.0.0.1:43123" (a loopback address
// when listening on all interfaces).
func (s *Server) URL() string { return s.url }

// Host is host:port of URL, the DPS "endpoint" to give a client.
func (s *Server) Host() string {
	return strings.TrimPrefix(strings.TrimPrefix(s.url, "https://"), "http://")
}

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// IDScope is the id scope the mock serves.
func (s *Server) IDScope() string { return s.enr.scope }

// CAPEM is the PEM of the generated CA that signed the server certificate
// (nil over plain HTTP).
func (s *Server) CAPEM() []byte {
	if s.certs == nil {
		return nil
	}
	return append([]byte(nil), s.certs.caPEM...)
}

// CertPool is a pool holding the generated CA (nil over plain HTTP).
func (s *Server) CertPool() *x509.CertPool { return s.pool }

// Client returns an HTTP client that trusts the mock's CA.
func (s *Server) Client() *http.Client {
	tr := &http.Transport{ForceAttemptHTTP2: false, MaxIdleConnsPerHost: 16}
	if s.pool != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// mockCurves returns the key exchange groups of the mock's TLS server and
// of SharedClient.
func mockCurves() []tls.CurveID { return []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384} }

// SharedClient returns one HTTP/1.1 client per server that trusts the
// mock's CA, keeps its connections alive and resumes TLS sessions, so that
// callers making many short requests (e.g. a status lookup after each
// registration) do not pay a TLS handshake each. Compression is disabled
// (no Accept-Encoding header is added). Close releases its idle
// connections; do not call CloseIdleConnections on it between requests.
func (s *Server) SharedClient() *http.Client {
	s.sharedMu.Lock()
	defer s.sharedMu.Unlock()
	if s.sharedClient == nil {
		tr := &http.Transport{
			ForceAttemptHTTP2:   false,
			DisableCompression:  true,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
		}
		if s.pool != nil {
			tr.TLSClientConfig = &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12,
				ClientSessionCache: tls.NewLRUClientSessionCache(4), CurvePreferences: mockCurves()}
		}
		s.sharedClient = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	}
	return s.sharedClient
}

// Requests returns the captured requests, oldest first, exactly as received
// (signatures not redacted; use Request.Redacted to print one). The
// requests share their Header, Body and Raw with the capture: do not
// modify them.
//
// Requests copies every kept request (up to Options.MaxRequests); to look at
// some of them, RequestsFor and RequestsSince are cheaper.
func (s *Server) Requests() []Request { return s.requests.all() }

// RequestCount returns the number of requests captured so far, including
// those no longer kept (Options.MaxRequests); 0 when the mock keeps none.
// The requests are numbered from 0 in capture order: read it before making
// requests, then RequestsSince or RequestsForSince with it returns only
// the requests captured after.
func (s *Server) RequestCount() int { return s.requests.count() }

// RequestsSince returns the kept requests numbered n or later (see
// RequestCount), oldest first, nil when there are none.
func (s *Server) RequestsSince(n int) []Request { return s.requests.since(n) }

// RequestsFor returns the kept requests whose path names registrationID,
// oldest first, nil when there are none. Registration ids are compared
// case-insensitively, as DPS and the mock's registrations do.
func (s *Server) RequestsFor(registrationID string) []Request {
	return s.RequestsForSince(registrationID, 0)
}

// RequestsForSince returns the requests of RequestsFor numbered n or later
// (see RequestCount).
func (s *Server) RequestsForSince(registrationID string, n int) []Request {
	if registrationID == "" {
		return nil
	}
	return s.requests.keyed(regKey(registrationID), n)
}

// Diagnoses returns the diagnoses of rejected requests, oldest first.
func (s *Server) Diagnoses() []Diagnosis { return s.diags.all() }

// DiagnosesFor returns the kept diagnoses of rejected requests whose path
// names registrationID (compared case-insensitively), oldest first, nil
// when there are none.
func (s *Server) DiagnosesFor(registrationID string) []Diagnosis {
	if registrationID == "" {
		return nil
	}
	return s.diags.keyed(regKey(registrationID), 0)
}

// Shutdown stops accepting connections and waits for active requests to
// finish (or ctx to end), then closes the capture file.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	return errors.Join(err, s.Close())
}

// Close stops the server at once, closing all connections, and closes the
// capture file. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.sharedMu.Lock()
		if s.sharedClient != nil {
			s.sharedClient.CloseIdleConnections()
		}
		s.sharedMu.Unlock()
		err := s.srv.Close()
		<-s.serveDone
		s.captureMu.Lock()
		if s.capFile != nil {
			err = errors.Join(err, s.capFile.Close())
		}
		s.capture = nil
		s.captureMu.Unlock()
		s.closeErr = errors.Join(err, s.serveErr)
	})
	return s.closeErr
}

// record stores a finished request and writes it to the capture file.
func (s *Server) record(req Request) {
	if req.Diagnosis != nil {
		s.diags.add(*req.Diagnosis, regKey(req.Diagnosis.RegistrationID))
	}
	s.requests.add(req, regKey(req.RegistrationID))
	s.captureMu.Lock()
	defer s.captureMu.Unlock()
	if s.capture == nil {
		return
	}
	b, err := json.Marshal(req)
	if err != nil {
		return
	}
	b = append(b, '\n')
	if _, err := s.capture.Write(b); err != nil && s.opts.Logf != nil {
		s.opts.Logf("mockdps: capture: %v", err)
	}
}
