package reference

import "testing"

func BenchmarkDeriveDeviceKey(b *testing.B) {
	const group = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DeriveDeviceKey(group, "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewSAS(b *testing.B) {
	for _, d := range Dialects() {
		b.Run(string(d), func(b *testing.B) {
			p := SASParams{Dialect: d, IDScope: "0neFEEDC0DE", RegistrationID: "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6",
				Key: "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=", Expiry: 1578941692, KeyName: d.DefaultKeyName()}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := NewSAS(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCheckToken(b *testing.B) {
	s, err := NewSAS(SASParams{IDScope: "0neFEEDC0DE", RegistrationID: "dev-1",
		Key: "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=", Expiry: 1578941692, KeyName: "registration"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		CheckToken(s.Token, "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=", CheckOptions{IDScope: "0neFEEDC0DE", RegistrationID: "dev-1"})
	}
}

func BenchmarkFirstDivergence(b *testing.B) {
	exp, err := RegisterRequestBytes(RequestParams{IDScope: "0neFEEDC0DE", RegistrationID: "dev-1",
		Token: "SharedAccessSignature sr=0neFEEDC0DE%2Fregistrations%2Fdev-1&sig=x%3D&se=1&skn=registration"})
	if err != nil {
		b.Fatal(err)
	}
	got := append([]byte{}, exp...)
	got[len(got)-3] = 'X'
	b.ReportAllocs()
	for b.Loop() {
		if FirstDivergence(exp, got) == nil {
			b.Fatal("no divergence")
		}
	}
}
