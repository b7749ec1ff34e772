package cases

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"testing"
)

// TestChunkedBundle checks the TLS.CA bundle is the first one longer than
// a frame: n-1 certificates fit in limit, n do not (or n is 16), and the
// PEM holds n distinct parseable certificates.
func TestChunkedBundle(t *testing.T) {
	frameLen := func(b []byte) int { return len(b) + 2*bytes.Count(b, []byte("\n")) }
	tests := []struct {
		name  string
		limit int
	}{
		{"no room", 0},
		{"one certificate", 700},
		{"a few", 4096},
		{"more than 16 fit", 1 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bundle, n, err := chunkedBundle(tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var certs [][]byte
			rest := bundle
			for {
				var blk *pem.Block
				blk, rest = pem.Decode(rest)
				if blk == nil {
					break
				}
				c, err := x509.ParseCertificate(blk.Bytes)
				if err != nil {
					t.Fatalf("certificate %d: %v", len(certs)+1, err)
				}
				if c.SerialNumber.Int64() != int64(len(certs)+1) {
					t.Errorf("certificate %d has serial %v", len(certs)+1, c.SerialNumber)
				}
				certs = append(certs, pem.EncodeToMemory(blk))
			}
			if len(certs) != n || len(bytes.TrimSpace(rest)) != 0 {
				t.Fatalf("%d certificates (%d bytes left over), n = %d", len(certs), len(rest), n)
			}
			if n < 16 && frameLen(bundle) <= tt.limit {
				t.Errorf("%d certificates, %d bytes in a frame, fit the limit %d", n, frameLen(bundle), tt.limit)
			}
			if n > 1 {
				if fewer := bytes.Join(certs[:n-1], nil); frameLen(fewer) > tt.limit {
					t.Errorf("%d certificates already exceed the limit %d", n-1, tt.limit)
				}
			}
		})
	}
}
