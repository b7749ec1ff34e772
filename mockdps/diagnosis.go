package mockdps

import (
	"time"
)

// Cause names why the mock rejected (or did not assign) a request.
type Cause string

// Authentication causes. The public response for all of them is the same
// 401 / errorCode 401002 / "Unauthorized"; only the diagnosis tells them apart.
const (
	CauseMissingAuthorization Cause = "missing-authorization" // no Authorization header
	CauseMalformedToken       Cause = "malformed-token"       // not a SharedAccessSignature token with sr, sig, se
	CauseWrongSKN             Cause = "wrong-skn"             // skn present but not "registration"
	CauseSRNotEncoded         Cause = "sr-not-encoded"        // sr sent with raw '/' separators
	CauseSREncodingMismatch   Cause = "sr-encoding-mismatch"  // the signed string differs from the sr sent (e.g. %2F signed, %2f sent)
	CauseResourceMismatch     Cause = "resource-mismatch"     // sr names another scope or registration id
	CauseExpired              Cause = "expired"               // se in the past
	CauseClockNotSet          Cause = "clock-not-set"         // se before 2000: the device clock was never set
	CauseExpiryTooFar         Cause = "expiry-too-far"        // se implausibly far in the future
	CauseSigNotEncoded        Cause = "sig-not-encoded"       // sig sent without URL-encoding ('+' reads as a space)
	CauseGroupKeyUsed         Cause = "group-key-used"        // signed with the group key instead of the derived device key
	CauseGroupKeyNotDecoded   Cause = "group-key-not-decoded" // HMAC keyed with the base64 text of the group key
	CauseKeyNotDecoded        Cause = "key-not-decoded"       // HMAC keyed with the base64 text of the device key
	CauseWrongKey             Cause = "wrong-key"             // none of the enrollment's keys
	CauseUnknownRegistration  Cause = "unknown-registration"  // no individual enrollment and no group to derive from
	CauseDisabled             Cause = "disabled"              // the enrollment (or its group) is disabled
)

// Request-shape causes.
const (
	CauseBadAPIVersion      Cause = "bad-api-version"          // api-version missing or unsupported
	CauseUnknownScope       Cause = "unknown-scope"            // first path segment is not the mock's id scope
	CauseBadRegistrationID  Cause = "bad-registration-id"      // registration id breaks the DPS character rules
	CauseWrongContentType   Cause = "wrong-content-type"       // PUT/POST without Content-Type: application/json
	CauseMalformedBody      Cause = "malformed-body"           // body is not a JSON object with a registrationId string
	CauseRegistrationIDBody Cause = "registration-id-mismatch" // body registrationId differs from the path
	CauseBodyTooLarge       Cause = "body-too-large"           // body over the cap
	CauseNotFound           Cause = "not-found"                // no such route
	CauseMethodNotAllowed   Cause = "method-not-allowed"       // known route, other method
	CauseUnknownOperation   Cause = "unknown-operation"        // operation id never issued for this registration
	CauseNotRegistered      Cause = "not-registered"           // registration status asked before any registration
	CauseThrottled          Cause = "throttled"                // rate limit exceeded
	CauseFault              Cause = "fault"                    // an injected fault
)

// Diagnosis explains one rejected request. Expected and Received show the
// two sides of the mismatch; signatures and keys in them are shortened to
// their first 6 characters.
type Diagnosis struct {
	Time           time.Time `json:"time"`
	Method         string    `json:"method"`
	RequestURI     string    `json:"requestUri"`
	RegistrationID string    `json:"registrationId,omitempty"`
	Status         int       `json:"status"`
	Cause          Cause     `json:"cause"`
	Expected       string    `json:"expected,omitempty"`
	Received       string    `json:"received,omitempty"`
	Message        string    `json:"message"`
}

func (d *Diagnosis) String() string {
	if d == nil {
		return ""
	}
	s := string(d.Cause) + ": " + d.Message
	if d.Expected != "" || d.Received != "" {
		s += " (expected " + d.Expected + "; received " + d.Received + ")"
	}
	return s
}
