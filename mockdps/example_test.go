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

	cl, err := reference.NewClient(reference.ClientOptions{
		Endpoint: s.Host(), RootCAs: s.CertPool(),
		Wait: func(context.Context, time.Duration) error { return nil },
	})
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
