package reference_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hiltest/hiltest/mockdps"
	"github.com/hiltest/hiltest/reference"
)

// TestClientAgainstMockDPS registers through the mock DPS in every dialect
// and checks that the bytes the server read off the TLS connection are,
// canonically, exactly the wire form the client reports.
func TestClientAgainstMockDPS(t *testing.T) {
	s := mockdps.NewTestServer(t, mockdps.Options{})
	cl, err := reference.NewClient(reference.ClientOptions{Endpoint: s.Host(), RootCAs: s.CertPool(),
		Wait: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, d := range reference.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			res, err := cl.Register(context.Background(), reference.RegisterParams{IDScope: s.IDScope(),
				RegistrationID: mockdps.DemoDevice1, Key: mockdps.DemoDevice1PrimaryKey, Dialect: d})
			if err != nil {
				t.Fatalf("register: %v (diagnoses %v)", err, s.Diagnoses())
			}
			if res.Status != reference.StatusAssigned || res.RegistrationState.AssignedHub != mockdps.DemoHub1 {
				t.Errorf("result %+v", res)
			}
			reqs := s.Requests()
			if len(reqs) < len(res.Exchanges) {
				t.Fatalf("server saw %d requests, client sent %d", len(reqs), len(res.Exchanges))
			}
			reqs = reqs[len(reqs)-len(res.Exchanges):]
			for j, ex := range res.Exchanges {
				got, err := reference.ParseRequest(reqs[j].Raw)
				if err != nil {
					t.Fatalf("request %d: %v", j, err)
				}
				if dv := reference.FirstDivergence(ex.Request, got.Bytes()); dv != nil {
					t.Errorf("request %d (%s): server read differs from wire form:\n%s", j, ex.Method, dv.View())
				}
			}
		})
	}
}

func ExampleClient_Register() {
	// A mock DPS on loopback with its demo enrollments and a fresh CA.
	s, err := mockdps.Start(mockdps.Options{RetryAfter: mockdps.RetryImmediately})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	cl, err := reference.NewClient(reference.ClientOptions{Endpoint: s.Host(), RootCAs: s.CertPool()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := cl.Register(ctx, reference.RegisterParams{
		IDScope:        s.IDScope(),
		RegistrationID: mockdps.DemoDevice1,
		Key:            mockdps.DemoDevice1PrimaryKey,
		Dialect:        reference.DialectAzureSDKForC,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Status, res.RegistrationState.AssignedHub)
	for _, ex := range res.Exchanges {
		fmt.Println(ex.Method, ex.Status)
	}
	// Output:
	// assigned demo-hub-1.azure-devices.net
	// PUT 202
	// GET 200
}
