package mockdps_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hiltest/hiltest/mockdps"
	"github.com/hiltest/hiltest/reference"
)

// Start a mock DPS with the demo enrollments, register a device of the demo
// group with the reference client, then see why a token signed with the
// group key itself is rejected.
func ExampleStart() {
	s, err := mockdps.Start(mockdps.Options{RetryAfter: mockdps.RetryImmediately})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	cl, err := demoClient(s)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cl.Close()
	ctx := context.Background()

	devKey, _ := reference.DeriveDeviceKey(mockdps.DemoGroupPrimaryKey, "sensor-42")
	res, err := cl.Register(ctx, reference.RegisterParams{IDScope: s.IDScope(), RegistrationID: "sensor-42", Key: devKey})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Status, res.RegistrationState.DeviceID, res.RegistrationState.Substatus)

	_, err = cl.Register(ctx, reference.RegisterParams{IDScope: s.IDScope(), RegistrationID: "sensor-43", Key: mockdps.DemoGroupPrimaryKey})
	var se *reference.ServiceError
	if errors.As(err, &se) {
		fmt.Println(se.StatusCode, se.ErrorCode, se.Message)
	}
	d := s.Diagnoses()[0]
	fmt.Println(d.Cause)
	fmt.Println(len(s.Requests()), "requests captured")
	// Output:
	// assigned sensor-42 initialAssignment
	// 401 401002 Unauthorized
	// group-key-used
	// 3 requests captured
}

// Enrollment files are validated with errors that name the line.
func ExampleParseEnrollmentsFile() {
	_, err := mockdps.ParseEnrollmentsFile("enrollments.yaml", []byte(`idScope: 0ne00000A0A
groups:
  - name: g1
    primaryKey: "not base64"
    hubs: [hub-1.azure-devices.net]
`))
	fmt.Println(err)
	// Output:
	// enrollments.yaml:4: group "g1": primary key is not base64
}

// Faults can be switched on and off while a test runs.
func ExampleServer_SetFault() {
	s, err := mockdps.Start(mockdps.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	s.SetFault(mockdps.Fault{Mode: mockdps.FaultServerError, Status: 503, Count: 1})

	tok, _ := reference.NewSAS(reference.SASParams{IDScope: s.IDScope(), RegistrationID: mockdps.DemoDevice1,
		Key: mockdps.DemoDevice1PrimaryKey, Expiry: time.Now().Add(time.Hour).Unix(), KeyName: "registration"})
	for range 2 {
		req, _ := reference.RegisterRequest(reference.RequestParams{Endpoint: s.Host(), IDScope: s.IDScope(),
			RegistrationID: mockdps.DemoDevice1, Token: tok.Token})
		resp, err := s.Client().Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	// Output:
	// 503
	// 202
}

// RunLoad drives concurrent register flows against a server (here the mock
// itself) and reports throughput and latency.
func ExampleRunLoad() {
	s, err := mockdps.Start(mockdps.Options{RetryAfter: mockdps.RetryImmediately})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	res, err := mockdps.RunLoad(context.Background(), mockdps.LoadOptions{
		URL: s.URL(), RootCAs: s.CertPool(), Devices: 16, Duration: 2 * time.Second, MaxFlows: 1000})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Errors == 0, res.RequestsPerFlow())
	// Output: true 2
}

// Each captured request records what its answer said about polling: the
// Retry-After sent and the operation it started or reported on.
func ExampleRequest() {
	s, cl, stop, err := startDemo(mockdps.Options{RetryAfter: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	res, err := cl.Register(context.Background(), reference.RegisterParams{IDScope: s.IDScope(),
		RegistrationID: mockdps.DemoDevice1, Key: mockdps.DemoDevice1PrimaryKey})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, q := range s.Requests() {
		ra := "none"
		if q.HasRetryAfter {
			ra = fmt.Sprint(q.RetryAfter, " s")
		}
		fmt.Println(q.Method, q.Status, "Retry-After:", ra, "same operation:", q.OperationID == res.OperationID)
	}
	// Output:
	// PUT 202 Retry-After: 1 s same operation: true
	// GET 200 Retry-After: none same operation: true
}

// Read one device's captured requests, and those captured after a point,
// without copying the whole capture.
func ExampleServer_RequestsFor() {
	s, cl, stop, err := startDemo(mockdps.Options{RetryAfter: mockdps.RetryImmediately})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	ctx := context.Background()
	register := func(regID, key string) {
		_, err := cl.Register(ctx, reference.RegisterParams{IDScope: s.IDScope(), RegistrationID: regID, Key: key})
		var se *reference.ServiceError
		if errors.As(err, &se) {
			fmt.Println(regID+":", se.StatusCode, se.ErrorCode, se.Message)
		}
	}

	register(mockdps.DemoDevice1, mockdps.DemoDevice1PrimaryKey)
	since := s.RequestCount()
	register(mockdps.DemoDevice2, mockdps.DemoDevice2PrimaryKey)
	register(mockdps.DemoDevice1, mockdps.DemoDevice2PrimaryKey) // the wrong key

	for _, q := range s.RequestsFor("DEMO-DEVICE-1") {
		fmt.Println(q.Method, q.Status)
	}
	fmt.Println(len(s.RequestsSince(since)), "requests since", since)
	fmt.Println(len(s.RequestsForSince(mockdps.DemoDevice1, since)), "of them for", mockdps.DemoDevice1)
	fmt.Println(s.DiagnosesFor(mockdps.DemoDevice1)[0].Cause)
	// Output:
	// demo-device-1: 401 401002 Unauthorized
	// PUT 202
	// GET 200
	// PUT 401
	// 3 requests since 2
	// 1 of them for demo-device-1
	// wrong-key
}

// demoClient returns a reference client for s that polls without waiting.
func demoClient(s *mockdps.Server) (*reference.Client, error) {
	return reference.NewClient(reference.ClientOptions{
		Endpoint: s.Host(), RootCAs: s.CertPool(),
		Wait: func(context.Context, time.Duration) error { return nil },
	})
}

// startDemo starts a mock DPS with the demo enrollments and o, and a
// demoClient for it; stop closes the client, then the server.
func startDemo(o mockdps.Options) (s *mockdps.Server, cl *reference.Client, stop func(), err error) {
	s, err = mockdps.Start(o)
	if err != nil {
		return nil, nil, nil, err
	}
	cl, err = demoClient(s)
	if err != nil {
		s.Close()
		return nil, nil, nil, err
	}
	return s, cl, func() { cl.Close(); s.Close() }, nil
}
