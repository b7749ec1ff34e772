// Package reference is the Go reference implementation of what a device does
// to provision into Azure IoT DPS with a symmetric key over HTTPS, and the
// yardstick boards are compared with byte for byte.
//
// It covers:
//   - keys: DecodeKey, ValidateRegistrationID, DeriveDeviceKey (group
//     enrollment), Sign;
//   - SAS tokens: NewSAS and FormatToken in each Dialect (default,
//     azure-sdk-for-c, azure-iot-sdk-c), whose bytes differ although DPS
//     accepts them all; ParseToken, Token.Verify, MatchDialects, and
//     CheckToken, which says whether a token made elsewhere verifies, in which
//     dialect it is written, when it expires and what is wrong with it;
//   - requests: RegisterRequest, OperationStatusRequest and
//     RegistrationStatusRequest as *http.Request and as exact wire bytes;
//   - comparison: ParseRequest and CanonicalFromHTTP reduce a request to what
//     DPS looks at, FirstDivergence and CompareRequests show the first byte
//     that differs with an aligned view;
//   - a DPS client (NewClient, Client.Register, Client.RegistrationStatus)
//     that polls honouring Retry-After and returns typed errors;
//   - Redact and RedactToken for logs.
//
// Sources for every rule are cited next to the code that implements it.
// Known-answer vectors, with their sources, are in testdata/vectors.json.
package reference
