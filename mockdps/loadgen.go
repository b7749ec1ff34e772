package mockdps

import (
	"bytes"
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
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hiltest/hiltest/reference"
)

// LoadOptions configure RunLoad: Devices concurrent simulated devices each
// run full register flows (PUT register, then GET the operation until it
// is no longer "assigning") back to back over keep-alive TLS connections.
// Each device first runs one untimed flow (connection set-up, TLS
// handshake); the figures are those of the steady state after it.
type LoadOptions struct {
	// URL is the base URL of the server ("https://127.0.0.1:port"); only
	// loopback addresses are accepted.
	URL     string
	RootCAs *x509.CertPool
	// IDScope and GroupKey: device i is "load-<i>" of a symmetric-key group
	// with GroupKey. "" = DemoIDScope and DemoGroupPrimaryKey.
	IDScope  string
	GroupKey string
	// Devices is the number of concurrent devices (0 = 64).
	Devices int
	// Conns bounds the connections (0 = one per device).
	Conns int
	// Duration bounds the run (0 = 5s, at most 10 minutes); MaxFlows, when
	// set, ends it after that many flows.
	Duration time.Duration
	MaxFlows int64
	// APIVersion of the requests ("" = reference.DefaultAPIVersion).
	APIVersion string
	// MaxPolls bounds the GETs of one flow (0 = 10).
	MaxPolls int
}

// LoadResult is what a run measured. Latency is per flow.
type LoadResult struct {
	Devices, Conns int
	Flows          int64
	Requests       int64
	Errors         int64
	FirstError     string
	Elapsed        time.Duration
	FlowsPerSec    float64
	RequestsPerSec float64
	P50, P99, Max  time.Duration
}

// RequestsPerFlow is the measured average of requests per flow.
func (r LoadResult) RequestsPerFlow() float64 {
	if r.Flows == 0 {
		return 0
	}
	return float64(r.Requests) / float64(r.Flows)
}

func (r LoadResult) String() string {
	s := fmt.Sprintf("%d flows in %s: %.0f flows/s, %.0f requests/s, p50 %s, p99 %s, max %s, %d errors",
		r.Flows, r.Elapsed.Round(time.Millisecond), r.FlowsPerSec, r.RequestsPerSec,
		r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Max.Round(time.Microsecond), r.Errors)
	if r.FirstError != "" {
		s += " (first: " + r.FirstError + ")"
	}
	return s
}

// maxLoadDuration bounds any run.
const maxLoadDuration = 10 * time.Minute

// RunLoad drives register flows against opts.URL until the duration passes,
// MaxFlows flows are done, or ctx ends.
func RunLoad(ctx context.Context, opts LoadOptions) (LoadResult, error) {
	res, lats, err := runLoad(ctx, opts)
	if err != nil {
		return res, err
	}
	res.setLatencies(lats)
	return res, nil
}

// setLatencies sets the percentiles from the flow latencies (sorted here).
func (r *LoadResult) setLatencies(all []time.Duration) {
	slices.Sort(all)
	if len(all) > 0 {
		r.P50 = all[len(all)*50/100]
		r.P99 = all[min(len(all)-1, len(all)*99/100)]
		r.Max = all[len(all)-1]
	}
}

// merge adds another run's counts to r (latencies are merged by the caller).
func (r *LoadResult) merge(o LoadResult) {
	r.Devices, r.Conns = o.Devices, o.Conns
	r.Flows += o.Flows
	r.Requests += o.Requests
	r.Errors += o.Errors
	r.Elapsed += o.Elapsed
	if r.FirstError == "" {
		r.FirstError = o.FirstError
	}
	r.FlowsPerSec = float64(r.Flows) / r.Elapsed.Seconds()
	r.RequestsPerSec = float64(r.Requests) / r.Elapsed.Seconds()
}

// runLoad is RunLoad returning the flow latencies instead of percentiles.
func runLoad(ctx context.Context, opts LoadOptions) (LoadResult, []time.Duration, error) {
	if err := checkLoopbackURL(opts.URL); err != nil {
		return LoadResult{}, nil, fmt.Errorf("load: %w", err)
	}
	if opts.IDScope == "" {
		opts.IDScope = DemoIDScope
	}
	if opts.GroupKey == "" {
		opts.GroupKey = DemoGroupPrimaryKey
	}
	if opts.Devices <= 0 {
		opts.Devices = 64
	}
	if opts.Conns <= 0 {
		opts.Conns = opts.Devices
	}
	if opts.Duration <= 0 {
		opts.Duration = 5 * time.Second
	}
	opts.Duration = min(opts.Duration, maxLoadDuration)
	if opts.APIVersion == "" {
		opts.APIVersion = reference.DefaultAPIVersion
	}
	if opts.MaxPolls <= 0 {
		opts.MaxPolls = 10
	}
	// Tokens are computed before the clock starts: the load measures the
	// server, not the client's HMACs.
	exp := time.Now().Add(opts.Duration + time.Hour).Unix()
	devs := make([]loadDevice, opts.Devices)
	for i := range devs {
		id := fmt.Sprintf("load-%05d", i)
		key, err := reference.DeriveDeviceKey(opts.GroupKey, id)
		if err != nil {
			return LoadResult{}, nil, fmt.Errorf("load: %w", err)
		}
		st, err := reference.NewSAS(reference.SASParams{IDScope: opts.IDScope, RegistrationID: id, Key: key, Expiry: exp, KeyName: "registration"})
		if err != nil {
			return LoadResult{}, nil, fmt.Errorf("load: %w", err)
		}
		base := opts.URL + "/" + opts.IDScope + "/registrations/" + id
		devs[i] = loadDevice{
			id: id, token: st.Token,
			putURL: base + "/register?api-version=" + opts.APIVersion,
			opBase: base + "/operations/",
			query:  "?api-version=" + opts.APIVersion,
			body:   []byte(`{"registrationId":"` + id + `"}`),
		}
	}
	// Devices share a few transports rather than one: a single transport's
	// connection pool lock becomes the bottleneck with many devices.
	shards := min(opts.Conns, 8)
	for opts.Conns%shards != 0 {
		shards-- // so that the shards hold exactly Conns connections
	}
	per := opts.Conns / shards
	clients := make([]*http.Client, shards)
	for i := range clients {
		tr := &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12},
			DisableCompression:  true,
			MaxConnsPerHost:     per,
			MaxIdleConnsPerHost: per,
			MaxIdleConns:        per,
			IdleConnTimeout:     30 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		}
		defer tr.CloseIdleConnections()
		clients[i] = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	}

	var (
		flows, reqs, errs atomic.Int64
		firstErr          atomic.Pointer[string]
		wg                sync.WaitGroup
		lats              = make([][]time.Duration, len(devs))
	)
	fail := func(err error) {
		errs.Add(1)
		msg := err.Error()
		firstErr.CompareAndSwap(nil, &msg)
	}
	// Warm-up, untimed: every device connects (TLS handshake) and runs one
	// flow, so the figures are those of the keep-alive steady state.
	wctx, wcancel := context.WithTimeout(ctx, opts.Duration)
	for i := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := devs[i].flow(wctx, clients[i%shards], opts.MaxPolls); err != nil && wctx.Err() == nil {
				fail(fmt.Errorf("warm-up: %w", err))
			}
		}()
	}
	wg.Wait()
	wcancel()

	ctx, cancel := context.WithTimeout(ctx, opts.Duration)
	defer cancel()
	start := time.Now()
	for i := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := &devs[i]
			// A context per device: every request derives a cancelable
			// context from it, and with one shared parent all devices
			// would contend on that parent's lock.
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			for ctx.Err() == nil {
				if opts.MaxFlows > 0 && flows.Load() >= opts.MaxFlows {
					return
				}
				t0 := time.Now()
				n, err := d.flow(ctx, clients[i%shards], opts.MaxPolls)
				if err != nil && ctx.Err() != nil {
					return // cut off by the end of the run: neither a flow nor an error
				}
				reqs.Add(int64(n))
				if err != nil {
					fail(err)
					continue
				}
				lats[i] = append(lats[i], time.Since(t0))
				flows.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	res := LoadResult{Devices: opts.Devices, Conns: opts.Conns, Flows: flows.Load(), Requests: reqs.Load(), Errors: errs.Load(), Elapsed: elapsed}
	if p := firstErr.Load(); p != nil {
		res.FirstError = *p
	}
	res.FlowsPerSec = float64(res.Flows) / elapsed.Seconds()
	res.RequestsPerSec = float64(res.Requests) / elapsed.Seconds()
	return res, slices.Concat(lats...), nil
}

// checkLoopbackURL refuses load against anything but a loopback address:
// the load generator is for the mock, never for a real service.
func checkLoopbackURL(raw string) error {
	if raw == "" {
		return errors.New("URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("URL %q: %w", raw, err)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("URL %q: load targets loopback addresses only", raw)
	}
	return nil
}

type loadDevice struct {
	id, token      string
	putURL, opBase string
	query          string
	body           []byte
}

// flow runs one register flow and returns the number of requests sent.
func (d *loadDevice) flow(ctx context.Context, hc *http.Client, maxPolls int) (int, error) {
	var st struct {
		OperationID string `json:"operationId"`
		Status      string `json:"status"`
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, d.putURL, bytes.NewReader(d.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", d.token)
	code, err := doJSON(hc, req, &st)
	if err != nil {
		return 1, fmt.Errorf("%s register: %w", d.id, err)
	}
	if code != http.StatusAccepted && code != http.StatusOK {
		return 1, fmt.Errorf("%s register: HTTP %d", d.id, code)
	}
	n := 1
	for st.Status == "assigning" {
		if n > maxPolls {
			return n, fmt.Errorf("%s: still assigning after %d polls", d.id, maxPolls)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.opBase+st.OperationID+d.query, nil)
		if err != nil {
			return n, err
		}
		req.Header.Set("Authorization", d.token)
		code, err = doJSON(hc, req, &st)
		n++
		if err != nil {
			return n, fmt.Errorf("%s operation: %w", d.id, err)
		}
		if code != http.StatusAccepted && code != http.StatusOK {
			return n, fmt.Errorf("%s operation: HTTP %d", d.id, code)
		}
	}
	if st.Status != "assigned" {
		return n, fmt.Errorf("%s: status %q", d.id, st.Status)
	}
	return n, nil
}

func doJSON(hc *http.Client, req *http.Request, v any) (int, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, v); err != nil {
			return resp.StatusCode, fmt.Errorf("body %q: %w", b, err)
		}
	}
	return resp.StatusCode, nil
}

// BenchOptions configure RunBench.
type BenchOptions struct {
	Devices  int           // concurrent devices (0 = 64)
	Conns    int           // connections (0 = one per device)
	Duration time.Duration // total per server (0 = 5s)
	// Rounds alternates the two loads this many times, Duration/Rounds
	// each, so that a change in background load on a shared machine
	// affects both alike (0 = 3).
	Rounds int
}

// BenchReport holds the mock's figures and the ceiling measured in the same
// run: the same load against a bare TLS handler that does no work.
type BenchReport struct {
	Mock    LoadResult
	Ceiling LoadResult
	// CeilingFlowsPerSec is the bare handler's requests/s divided by the
	// mock's requests per flow.
	CeilingFlowsPerSec float64
	// Ratio is Mock.FlowsPerSec / CeilingFlowsPerSec.
	Ratio float64
}

// RunBench starts a mock DPS on loopback (AssignDelay 0, Retry-After 0, so
// a flow is one PUT and one GET) and a bare TLS server with the same
// certificate, and runs the same load against each in alternating rounds.
func RunBench(ctx context.Context, opts BenchOptions) (BenchReport, error) {
	if opts.Duration <= 0 {
		opts.Duration = 5 * time.Second
	}
	if opts.Rounds <= 0 {
		opts.Rounds = 3
	}
	s, err := Start(Options{RetryAfter: RetryImmediately, MaxRequests: 1000})
	if err != nil {
		return BenchReport{}, err
	}
	defer s.Close()
	bare, err := startBare(s.certs.server)
	if err != nil {
		return BenchReport{}, fmt.Errorf("bench ceiling: %w", err)
	}
	defer bare.close()
	lo := LoadOptions{RootCAs: s.CertPool(), Devices: opts.Devices, Conns: opts.Conns, Duration: opts.Duration / time.Duration(opts.Rounds)}
	var rep BenchReport
	var mockLats, bareLats []time.Duration
	for range opts.Rounds {
		lo.URL = s.URL()
		r, lats, err := runLoad(ctx, lo)
		if err != nil {
			return BenchReport{}, fmt.Errorf("bench mock: %w", err)
		}
		rep.Mock.merge(r)
		mockLats = append(mockLats, lats...)
		lo.URL = bare.url
		r, lats, err = runLoad(ctx, lo)
		if err != nil {
			return BenchReport{}, fmt.Errorf("bench ceiling: %w", err)
		}
		rep.Ceiling.merge(r)
		bareLats = append(bareLats, lats...)
		if ctx.Err() != nil {
			break
		}
	}
	rep.Mock.setLatencies(mockLats)
	rep.Ceiling.setLatencies(bareLats)
	if rpf := rep.Mock.RequestsPerFlow(); rpf > 0 {
		rep.CeilingFlowsPerSec = rep.Ceiling.RequestsPerSec / rpf
	}
	if rep.CeilingFlowsPerSec > 0 {
		rep.Ratio = rep.Mock.FlowsPerSec / rep.CeilingFlowsPerSec
	}
	return rep, nil
}

// bareServer is a TLS HTTP/1.1 server whose handler does no work: fixed
// answers shaped like the mock's (202 assigning to PUT, 200 assigned to GET).
type bareServer struct {
	srv  *http.Server
	url  string
	done chan struct{}
}

var (
	bareAccepted = []byte(`{"operationId":"5.0000000000000000.00000000-0000-4000-8000-000000000000","status":"assigning"}`)
	bareAssigned = []byte(`{"operationId":"5.0000000000000000.00000000-0000-4000-8000-000000000000","status":"assigned"}`)
)

func startBare(cert tls.Certificate) (*bareServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	tl := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12})
	b := &bareServer{url: "https://" + ln.Addr().String(), done: make(chan struct{})}
	b.srv = &http.Server{
		// Handshakes cut short when a phase ends are expected; not news.
		ErrorLog:          log.New(io.Discard, "", 0),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			if r.Method == http.MethodPut {
				w.WriteHeader(http.StatusAccepted)
				_, _ = w.Write(bareAccepted)
				return
			}
			_, _ = w.Write(bareAssigned)
		}),
	}
	go func() {
		defer close(b.done)
		_ = b.srv.Serve(tl)
	}()
	return b, nil
}

func (b *bareServer) close() error {
	err := b.srv.Close()
	<-b.done
	return err
}
