package reference

import (
	"encoding/json"
	"os"
	"testing"
)

// vectors mirrors testdata/vectors.json (copied from the project's shared DPS
// facts; each vector names its published source in "sources").
type vectors struct {
	Sources map[string]string `json:"sources"`
	Derive  []struct {
		Source         string `json:"source"`
		GroupKey       string `json:"group_key"`
		RegistrationID string `json:"registration_id"`
		DeviceKey      string `json:"device_key"`
	} `json:"derive"`
	HMAC []struct {
		Source    string `json:"source"`
		Key       string `json:"key"`
		Message   string `json:"message"`
		Signature string `json:"signature"`
	} `json:"hmac_sha256_base64"`
	SASFormat []sasVector `json:"sas_format"`
	SAS       []sasVector `json:"sas"`
}

type sasVector struct {
	Source         string `json:"source"`
	Dialect        string `json:"dialect"`
	IDScope        string `json:"id_scope"`
	RegistrationID string `json:"registration_id"`
	Resource       string `json:"resource"`
	Key            string `json:"key"`
	Expiry         int64  `json:"expiry"`
	Signature      string `json:"signature"`
	KeyName        string `json:"key_name"`
	StringToSign   string `json:"string_to_sign"`
	Token          string `json:"token"`
}

func loadVectors(t testing.TB) vectors {
	t.Helper()
	data, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("parse vectors: %v", err)
	}
	if len(v.Derive) == 0 || len(v.HMAC) == 0 || len(v.SASFormat) == 0 || len(v.SAS) == 0 {
		t.Fatalf("vectors file is missing a section: %+v", v)
	}
	for _, group := range [][]sasVector{v.SASFormat, v.SAS} {
		for _, x := range group {
			if v.Sources[x.Source] == "" {
				t.Fatalf("vector source %q is not described in sources", x.Source)
			}
		}
	}
	return v
}

func TestVectorsDerive(t *testing.T) {
	for _, x := range loadVectors(t).Derive {
		t.Run(x.RegistrationID, func(t *testing.T) {
			got, err := DeriveDeviceKey(x.GroupKey, x.RegistrationID)
			if err != nil {
				t.Fatal(err)
			}
			if got != x.DeviceKey {
				t.Errorf("DeriveDeviceKey = %s, want %s (%s)", got, x.DeviceKey, x.Source)
			}
		})
	}
}

func TestVectorsHMAC(t *testing.T) {
	for _, x := range loadVectors(t).HMAC {
		t.Run(x.Source, func(t *testing.T) {
			got, err := Sign(x.Key, x.Message)
			if err != nil {
				t.Fatal(err)
			}
			if got != x.Signature {
				t.Errorf("Sign = %s, want %s", got, x.Signature)
			}
		})
	}
}

// TestVectorsFormat checks token formatting with a fixed signature
// (azure-sdk-for-c test_az_iot_provisioning_client_sas.c).
func TestVectorsFormat(t *testing.T) {
	for _, x := range loadVectors(t).SASFormat {
		t.Run(x.Source+"/"+x.KeyName, func(t *testing.T) {
			d, err := ParseDialect(x.Dialect)
			if err != nil {
				t.Fatal(err)
			}
			enc := d.Resource(x.IDScope, x.RegistrationID)
			if got := StringToSign(enc, x.Expiry); got != x.StringToSign {
				t.Errorf("string to sign = %q, want %q", got, x.StringToSign)
			}
			if got := FormatToken(d, enc, x.Signature, x.Expiry, x.KeyName); got != x.Token {
				t.Errorf("token =\n %s\nwant\n %s", got, x.Token)
			}
			tok, err := ParseToken(x.Token)
			if err != nil {
				t.Fatal(err)
			}
			if got := MatchDialects(tok); !containsDialect(got, d) {
				t.Errorf("MatchDialects = %v, want it to contain %s", got, d)
			}
		})
	}
}

func TestVectorsSAS(t *testing.T) {
	for _, x := range loadVectors(t).SAS {
		t.Run(x.Source+"/"+x.Dialect, func(t *testing.T) {
			d, err := ParseDialect(x.Dialect)
			if err != nil {
				t.Fatal(err)
			}
			s, err := NewSAS(SASParams{Dialect: d, IDScope: x.IDScope, RegistrationID: x.RegistrationID,
				Resource: x.Resource, Key: x.Key, Expiry: x.Expiry, KeyName: x.KeyName})
			if err != nil {
				t.Fatal(err)
			}
			if s.StringToSign != x.StringToSign {
				t.Errorf("string to sign = %q, want %q", s.StringToSign, x.StringToSign)
			}
			if x.Signature != "" && s.Signature != x.Signature {
				t.Errorf("signature = %s, want %s", s.Signature, x.Signature)
			}
			if s.Token != x.Token {
				t.Errorf("token =\n %s\nwant\n %s", s.Token, x.Token)
			}
			tok, err := ParseToken(x.Token)
			if err != nil {
				t.Fatal(err)
			}
			if !tok.Verify(x.Key) {
				t.Errorf("published token does not verify with its key")
			}
			if !containsDialect(MatchDialects(tok), d) {
				t.Errorf("MatchDialects(%s) = %v, want it to contain %s", x.Token, MatchDialects(tok), d)
			}
		})
	}
}
