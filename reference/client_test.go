package reference

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDPS is a small DPS stand-in on real TLS: it checks each request's
// token with CheckToken and answers from a script.
type fakeDPS struct {
	t       *testing.T
	key     string
	scope   string
	mu      sync.Mutex
	script  []fakeResponse
	seen    [][]byte // canonical form of each request received
	headers []http.Header
}

type fakeResponse struct {
	status     int
	retryAfter string
	body       string
}

// received returns the canonical form and headers of each request so far.
func (f *fakeDPS) received() ([][]byte, []http.Header) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte{}, f.seen...), append([]http.Header{}, f.headers...)
}

func (f *fakeDPS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := CanonicalFromHTTP(r)
	if err != nil {
		f.t.Errorf("canonical: %v", err)
	}
	f.seen = append(f.seen, c.Bytes())
	f.headers = append(f.headers, r.Header.Clone())
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(parts) < 3 {
		http.Error(w, "bad path", 404)
		return
	}
	chk := CheckToken(r.Header.Get("Authorization"), f.key, CheckOptions{IDScope: parts[0], RegistrationID: parts[2]})
	if !chk.Valid {
		w.WriteHeader(401)
		_, _ = w.Write([]byte(`{"errorCode":401002,"trackingId":"t-1","message":"Unauthorized","timestampUtc":"2026-01-01T00:00:00Z"}`))
		return
	}
	if len(f.script) == 0 {
		http.Error(w, "script exhausted", 500)
		f.t.Error("fake DPS: more requests than scripted")
		return
	}
	resp := f.script[0]
	f.script = f.script[1:]
	if resp.retryAfter != "" {
		w.Header().Set("Retry-After", resp.retryAfter)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(resp.status)
	_, _ = w.Write([]byte(resp.body))
}

const (
	testScope = "0ne00000A0A"
	testID    = "dev-01"
	testOp    = "4.d0a671905ea5b2c8.e7173b7b-0e54-4aa0-9d20-aeb1b89e6c7d"
)

func startFake(t *testing.T, script ...fakeResponse) (*fakeDPS, *Client, *[]time.Duration, string) {
	t.Helper()
	v := loadVectors(t)
	key, err := DeriveDeviceKey(v.Derive[0].GroupKey, testID)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeDPS{t: t, key: key, scope: testScope, script: script}
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	var waits []time.Duration
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c, err := NewClient(ClientOptions{
		Endpoint: strings.TrimPrefix(srv.URL, "https://"),
		RootCAs:  pool,
		MaxPolls: 5,
		Wait: func(ctx context.Context, d time.Duration) error {
			waits = append(waits, d)
			return ctx.Err()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return f, c, &waits, key
}

const assignedBody = `{"operationId":"` + testOp + `","status":"assigned","registrationState":{"registrationId":"dev-01",` +
	`"createdDateTimeUtc":"2022-08-31T22:02:50.5163352Z","assignedHub":"MyExampleHub.azure-devices.net","deviceId":"dev-01",` +
	`"status":"assigned","substatus":"initialAssignment","lastUpdatedDateTimeUtc":"2022-08-31T22:02:50.7370676Z",` +
	`"etag":"IjY5MDAzNTUyLTAwMDAtMDMwMC0wMDAwLTYzMGZkYThhMDAwMCI=","payload":{"x":1}}}`

func TestClientRegister(t *testing.T) {
	f, c, waits, key := startFake(t,
		fakeResponse{202, "3", `{"operationId":"` + testOp + `","status":"assigning"}`},
		fakeResponse{202, "", `{"operationId":"` + testOp + `","status":"assigning","registrationState":{"registrationId":"dev-01","status":"assigning"}}`},
		fakeResponse{200, "", assignedBody},
	)
	res, err := c.Register(context.Background(), RegisterParams{IDScope: testScope, RegistrationID: testID, Key: key,
		Expiry: time.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	if res.Status != StatusAssigned || res.OperationID != testOp || res.RegistrationState == nil ||
		res.RegistrationState.AssignedHub != "MyExampleHub.azure-devices.net" || res.RegistrationState.DeviceID != testID ||
		res.RegistrationState.Substatus != "initialAssignment" || string(res.RegistrationState.Payload) != `{"x":1}` {
		t.Errorf("result = %+v, state %+v", res, res.RegistrationState)
	}
	if want := []time.Duration{3 * time.Second, DefaultRetryAfter}; !slices.Equal(*waits, want) {
		t.Errorf("waits = %v, want %v", *waits, want)
	}
	var methods []string
	var statuses []int
	for _, ex := range res.Exchanges {
		methods = append(methods, ex.Method)
		statuses = append(statuses, ex.Status)
	}
	if !slices.Equal(methods, []string{"PUT", "GET", "GET"}) || !slices.Equal(statuses, []int{202, 202, 200}) {
		t.Errorf("exchanges: %v %v", methods, statuses)
	}
	// What the server received is, canonically, exactly the wire form.
	seen, headers := f.received()
	for i, ex := range res.Exchanges {
		if d := FirstDivergence(ex.Request, seen[i]); d != nil {
			t.Errorf("request %d: received differs from wire form:\n%s", i, d.View())
		}
		for _, h := range []string{"User-Agent", "Accept-Encoding"} {
			if _, ok := headers[i][h]; ok {
				t.Errorf("request %d carried %s: %v", i, h, headers[i])
			}
		}
	}
	if !strings.HasPrefix(string(res.Exchanges[1].Request), "GET /"+testScope+"/registrations/"+testID+"/operations/"+testOp+"?api-version="+DefaultAPIVersion+" ") {
		t.Errorf("poll request: %q", res.Exchanges[1].Request)
	}
}

func TestClientRegisterDialects(t *testing.T) {
	for _, d := range Dialects() {
		t.Run(string(d), func(t *testing.T) {
			f, c, _, key := startFake(t, fakeResponse{200, "", assignedBody})
			res, err := c.Register(context.Background(), RegisterParams{IDScope: testScope, RegistrationID: testID, Key: key, Dialect: d})
			if err != nil {
				t.Fatal(err)
			}
			seen, _ := f.received()
			req, err := ParseRequest(seen[0])
			if err != nil {
				t.Fatal(err)
			}
			auth, _ := req.Header("Authorization")
			tok, err := ParseToken(auth)
			if err != nil {
				t.Fatal(err)
			}
			if got := MatchDialects(tok); !slices.Equal(got, []Dialect{d}) {
				t.Errorf("token dialects %v, want %s", got, d)
			}
			if ttl := time.Until(time.Unix(tok.Expiry, 0)); ttl > DefaultTokenTTL || ttl < DefaultTokenTTL-time.Minute {
				t.Errorf("token TTL %s, want about %s", ttl, DefaultTokenTTL)
			}
			if res.Status != StatusAssigned {
				t.Errorf("status %s", res.Status)
			}
		})
	}
}

func TestClientServiceError(t *testing.T) {
	_, c, waits, _ := startFake(t)
	// A key that is not the device key: the fake answers 401 like DPS.
	_, err := c.Register(context.Background(), RegisterParams{IDScope: testScope, RegistrationID: testID, Key: "YWJjZGVmZ2g="})
	se, ok := IsServiceError(err)
	if !ok {
		t.Fatalf("err = %v, want *ServiceError", err)
	}
	if se.StatusCode != 401 || se.ErrorCode != 401002 || se.TrackingID != "t-1" || se.Message != "Unauthorized" ||
		se.TimestampUTC != "2026-01-01T00:00:00Z" {
		t.Errorf("ServiceError = %+v", se)
	}
	if !strings.Contains(se.Error(), "401002") {
		t.Errorf("Error() = %q", se.Error())
	}
	if len(*waits) != 0 {
		t.Errorf("waited %v after a 401", *waits)
	}
}

func TestServiceErrorDecode(t *testing.T) {
	e := serviceError(400, []byte(`{"errorCode":"400004","message":"bad","info":{"a":"b","n":3}}`))
	if e.ErrorCode != 400004 || e.Info["a"] != "b" || e.Info["n"] != "3" || e.Message != "bad" {
		t.Errorf("= %+v", e)
	}
	e = serviceError(502, []byte("<html>gateway</html>"))
	if e.StatusCode != 502 || e.Message != "<html>gateway</html>" {
		t.Errorf("non-JSON body: %+v", e)
	}
}

func TestClientRegisterEnds(t *testing.T) {
	tests := []struct {
		name   string
		script []fakeResponse
		check  func(*testing.T, *RegistrationResult, error, []time.Duration)
	}{
		{"failed", []fakeResponse{
			{202, "1", `{"operationId":"op1","status":"assigning"}`},
			{200, "", `{"operationId":"op1","status":"failed","registrationState":{"status":"failed","errorCode":400209,"errorMessage":"Custom allocation failed"}}`},
		}, func(t *testing.T, r *RegistrationResult, err error, _ []time.Duration) {
			var re *RegistrationError
			if !errors.As(err, &re) || re.Status != StatusFailed || re.ErrorCode != 400209 || re.ErrorMessage != "Custom allocation failed" {
				t.Errorf("err = %#v", err)
			}
		}},
		{"throttled then assigned", []fakeResponse{
			{429, "10", `{"errorCode":429001,"message":"throttled"}`},
			{200, "", assignedBody},
		}, func(t *testing.T, r *RegistrationResult, err error, waits []time.Duration) {
			if err != nil || r.Status != StatusAssigned {
				t.Fatalf("err = %v, result %+v", err, r)
			}
			if !slices.Equal(waits, []time.Duration{10 * time.Second}) || r.Exchanges[0].Method != "PUT" || r.Exchanges[1].Method != "PUT" {
				t.Errorf("waits %v, exchanges %+v", waits, r.Exchanges)
			}
			if r.Exchanges[0].RetryAfter != 10*time.Second {
				t.Errorf("exchange RetryAfter %v", r.Exchanges[0].RetryAfter)
			}
		}},
		{"retry-after bounded", []fakeResponse{
			{202, "0", `{"operationId":"op1","status":"assigning"}`},
			{202, "100000", `{"operationId":"op1","status":"assigning"}`},
			{202, "Fri, 31 Dec 1999 23:59:59 GMT", `{"operationId":"op1","status":"assigning"}`},
			{200, "", assignedBody},
		}, func(t *testing.T, r *RegistrationResult, err error, waits []time.Duration) {
			if err != nil {
				t.Fatal(err)
			}
			if want := []time.Duration{MinRetryAfter, MaxRetryAfter, DefaultRetryAfter}; !slices.Equal(waits, want) {
				t.Errorf("waits %v, want %v", waits, want)
			}
		}},
		{"too many polls", []fakeResponse{
			{202, "", `{"operationId":"op1","status":"assigning"}`},
			{202, "", `{"operationId":"op1","status":"assigning"}`},
			{202, "", `{"operationId":"op1","status":"assigning"}`},
			{202, "", `{"operationId":"op1","status":"assigning"}`},
			{202, "", `{"operationId":"op1","status":"assigning"}`},
			{202, "", `{"operationId":"op1","status":"assigning"}`},
		}, func(t *testing.T, r *RegistrationResult, err error, waits []time.Duration) {
			if err == nil || !strings.Contains(err.Error(), "after 6 requests") || len(r.Exchanges) != 6 {
				t.Errorf("err = %v, %d exchanges", err, len(r.Exchanges))
			}
		}},
		{"no operation id", []fakeResponse{
			{202, "", `{"status":"assigning"}`},
		}, func(t *testing.T, r *RegistrationResult, err error, _ []time.Duration) {
			if err == nil || !strings.Contains(err.Error(), "operationId") {
				t.Errorf("err = %v", err)
			}
		}},
		{"not JSON", []fakeResponse{
			{200, "", `<html>`},
		}, func(t *testing.T, r *RegistrationResult, err error, _ []time.Duration) {
			if err == nil || !strings.Contains(err.Error(), "not an operation status") {
				t.Errorf("err = %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c, waits, key := startFake(t, tt.script...)
			r, err := c.Register(context.Background(), RegisterParams{IDScope: testScope, RegistrationID: testID, Key: key})
			tt.check(t, r, err, *waits)
		})
	}
}

func TestClientDeadline(t *testing.T) {
	_, c, waits, key := startFake(t, fakeResponse{202, "30", `{"operationId":"op1","status":"assigning"}`})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Register(ctx, RegisterParams{IDScope: testScope, RegistrationID: testID, Key: key})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
	if len(*waits) != 0 {
		t.Errorf("waited %v past the deadline", *waits)
	}
}

func TestClientRegistrationStatus(t *testing.T) {
	f, c, _, key := startFake(t, fakeResponse{200, "", `{"registrationId":"dev-01","status":"assigned","assignedHub":"h.azure-devices.net","deviceId":"dev-01"}`})
	st, exs, err := c.RegistrationStatus(context.Background(), RegisterParams{IDScope: testScope, RegistrationID: testID, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if st.AssignedHub != "h.azure-devices.net" || st.Status != StatusAssigned || len(exs) != 1 {
		t.Errorf("= %+v, %d exchanges", st, len(exs))
	}
	seen, _ := f.received()
	if d := FirstDivergence(exs[0].Request, seen[0]); d != nil {
		t.Errorf("received differs:\n%s", d.View())
	}
	if !strings.HasPrefix(string(seen[0]), "POST /"+testScope+"/registrations/"+testID+"?api-version=") {
		t.Errorf("request: %q", seen[0])
	}
}

func TestNewClientErrors(t *testing.T) {
	for _, o := range []ClientOptions{
		{Endpoint: "a/b"},
		{Scheme: "ftp"},
		{MinRetryAfter: time.Minute, MaxRetryAfter: time.Second},
	} {
		if _, err := NewClient(o); err == nil {
			t.Errorf("NewClient(%+v): no error", o)
		}
	}
}

func TestSleepCtx(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sleepCtx(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
	if err := sleepCtx(context.Background(), time.Nanosecond); err != nil {
		t.Errorf("err = %v", err)
	}
}
