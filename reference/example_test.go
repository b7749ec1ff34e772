package reference_test

import (
	"fmt"
	"time"

	"github.com/hiltest/hiltest/reference"
)

func ExampleDeriveDeviceKey() {
	// The published vector from the DPS docs (how-to-legacy-device-symm-key.md).
	key, err := reference.DeriveDeviceKey(
		"8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==",
		"sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(key)
	// Output: Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=
}

func ExampleNewSAS() {
	for _, d := range reference.Dialects() {
		s, err := reference.NewSAS(reference.SASParams{
			Dialect:        d,
			IDScope:        "0neFEEDC0DE",
			RegistrationID: "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6",
			Key:            "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=",
			Expiry:         1578941692,
			KeyName:        d.DefaultKeyName(),
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(s.Token)
	}
	// Output:
	// SharedAccessSignature sr=0neFEEDC0DE%2Fregistrations%2Fsn-007-888-abc-mac-a1-b2-c3-d4-e5-f6&sig=WxsrGpYfYNcVs2k6l9OQRN493PGmfVtHXNWG4ANEGnM%3D&se=1578941692&skn=registration
	// SharedAccessSignature sr=0neFEEDC0DE%2fregistrations%2fsn-007-888-abc-mac-a1-b2-c3-d4-e5-f6&sig=tR1ZX3n%2BFGprnnBoE9eljZiAFpJyRtdUjHgqMI8xMpk%3D&se=1578941692
	// SharedAccessSignature sr=0neFEEDC0DE%2fregistrations%2fsn-007-888-abc-mac-a1-b2-c3-d4-e5-f6&sig=tR1ZX3n%2bFGprnnBoE9eljZiAFpJyRtdUjHgqMI8xMpk%3d&se=1578941692&skn=registration
}

func ExampleCheckToken() {
	groupKey := "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="
	deviceKey, _ := reference.DeriveDeviceKey(groupKey, "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6")
	// A token as the legacy Azure IoT C SDK writes it, but signed with the
	// group key instead of the device key.
	tok, _ := reference.NewSAS(reference.SASParams{
		Dialect: reference.DialectAzureIoTSDKC, IDScope: "0neFEEDC0DE",
		RegistrationID: "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6",
		Key:            groupKey, Expiry: 1578941692, KeyName: "registration",
	})
	c := reference.CheckToken(tok.Token, deviceKey, reference.CheckOptions{
		IDScope: "0neFEEDC0DE", RegistrationID: "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6",
		Now: time.Unix(1578941692-3600, 0), GroupKey: groupKey,
	})
	fmt.Println(c.Valid, c.Dialects, c.ExpiresIn)
	for _, p := range c.Problems {
		fmt.Println(p.Code)
	}
	// Output:
	// false [azure-iot-sdk-c] 1h0m0s
	// group-key-used
}

func ExampleFirstDivergence() {
	expected := []byte("sr=0neFEEDC0DE%2Fregistrations%2Fdev-1&sig=")
	got := []byte("sr=0neFEEDC0DE%2fregistrations%2fdev-1&sig=")
	d := reference.FirstDivergence(expected, got)
	fmt.Println(d)
	fmt.Println(d.View())
	// Output:
	// differs at byte 16: expected 'F' (0x46), got 'f' (0x66)
	// expected: sr=0neFEEDC0DE%2Fregistrations%2Fdev-1&s…
	// got:      sr=0neFEEDC0DE%2fregistrations%2fdev-1&s…
	//                           ^
	// differs at byte 16: expected 'F' (0x46), got 'f' (0x66) (line 1, column 17)
	// hex expected @8: 45 44 43 30 44 45 25 32 [46] 72 65 67 69 73 74 72
	// hex got      @8: 45 44 43 30 44 45 25 32 [66] 72 65 67 69 73 74 72
}

func ExampleMatchDialects() {
	tok, err := reference.ParseToken("SharedAccessSignature sr=0neFEEDC0DE%2fregistrations%2fmyRegistrationId" +
		"&sig=cS1eHM%2FlDjsRsrZV9508wOFrgmZk4g8FNg8NwHVSiSQ&se=1578941692")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(reference.MatchDialects(tok))
	// Output: [azure-sdk-for-c]
}

func ExampleCompareRequests() {
	p := reference.RequestParams{IDScope: "0ne00000A0A", RegistrationID: "dev-1",
		Token: "SharedAccessSignature sr=0ne00000A0A%2Fregistrations%2Fdev-1&sig=x%3D&se=1700000000&skn=registration"}
	expected, _ := reference.RegisterRequestBytes(p)
	// The same request from another HTTP stack: other header order and an
	// extra header (both ignored), and a body with a space the reference does
	// not send, which shows first in Content-Length.
	got := []byte("PUT /0ne00000A0A/registrations/dev-1/register?api-version=2021-06-01 HTTP/1.1\r\n" +
		"Host: global.azure-devices-provisioning.net\r\n" +
		"User-Agent: esp32\r\n" +
		"Authorization: SharedAccessSignature sr=0ne00000A0A%2Fregistrations%2Fdev-1&sig=x%3D&se=1700000000&skn=registration\r\n" +
		"Content-Type: application/json\r\n" +
		"Content-Length: 27\r\n\r\n" +
		`{"registrationId": "dev-1"}`)
	d, err := reference.CompareRequests(expected, got)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(d)
	// Output: differs at byte 173: expected '6' (0x36), got '7' (0x37)
}

func ExampleRedactToken() {
	fmt.Println(reference.RedactToken("SharedAccessSignature sr=0ne00000A0A%2Fregistrations%2Fdev-1" +
		"&sig=WxsrGpYfYNcVs2k6l9OQRN493PGmfVtHXNWG4ANEGnM%3D&se=1578941692&skn=registration"))
	// Output: SharedAccessSignature sr=0ne00000A0A%2Fregistrations%2Fdev-1&sig=Wxsr…(46 bytes)&se=1578941692&skn=registration
}
