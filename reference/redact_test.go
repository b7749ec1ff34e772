package reference

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"short", "[redacted]"},
		{"Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=", "Jsm0…(44 bytes)"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRedactToken(t *testing.T) {
	const sig = "WxsrGpYfYNcVs2k6l9OQRN493PGmfVtHXNWG4ANEGnM%3D"
	tests := []struct{ in, want string }{
		{"SharedAccessSignature sr=a%2Fb&sig=" + sig + "&se=1&skn=registration",
			"SharedAccessSignature sr=a%2Fb&sig=" + Redact(sig) + "&se=1&skn=registration"},
		{"SharedAccessSignature sig=" + sig, "SharedAccessSignature sig=" + Redact(sig)},
		{"sig=" + sig + "&sr=xsig=1", "sig=" + Redact(sig) + "&sr=xsig=1"},
		{"sr=xsig=1&se=2", "sr=xsig=1&se=2"},
		{"no token here", "no token here"},
	}
	for _, tt := range tests {
		got := RedactToken(tt.in)
		if got != tt.want {
			t.Errorf("RedactToken(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.Contains(got, sig) {
			t.Errorf("RedactToken(%q) leaks the signature", tt.in)
		}
	}
}
