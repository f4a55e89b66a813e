package webhook

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

func TestSignVerify(t *testing.T) {
	secret := []byte("s3cret-s3cret-s3cret")
	body := []byte(`{"id":"evt_1","event":"batch_completed"}`)
	sig := Sign(secret, body)
	if !strings.HasPrefix(sig, "sha256=") || len(sig) != len("sha256=")+64 {
		t.Fatalf("Sign = %q, want sha256= and 64 hex digits", sig)
	}
	cases := []struct {
		name   string
		secret []byte
		body   []byte
		sig    string
		ok     bool
	}{
		{"valid", secret, body, sig, true},
		{"upper-case hex", secret, body, "sha256=" + strings.ToUpper(sig[7:]), true},
		{"upper-case prefix", secret, body, "SHA256=" + sig[7:], true},
		{"tampered body", secret, []byte(`{"id":"evt_2","event":"batch_completed"}`), sig, false},
		{"wrong secret", []byte("other-secret-other"), body, sig, false},
		{"empty secret", nil, body, Sign(nil, body), false},
		{"no prefix", secret, body, sig[7:], false},
		{"sha1 prefix", secret, body, "sha1=" + sig[7:], false},
		{"truncated", secret, body, sig[:len(sig)-2], false},
		{"not hex", secret, body, "sha256=" + strings.Repeat("zz", 32), false},
		{"empty", secret, body, "", false},
	}
	for _, c := range cases {
		if got := Verify(c.secret, c.body, c.sig); got != c.ok {
			t.Errorf("%s: Verify = %v, want %v", c.name, got, c.ok)
		}
	}
}

// TestSignMatchesOpenSSL checks Sign against an independent HMAC: the
// openssl command line, as a shell receiver would use it (docs show this).
func TestSignMatchesOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl is needed for this test: %v", err)
	}
	secret := "whsec-0123456789abcdef"
	body := []byte(`{"id":"evt_x","event":"analysis_completed","data":{"n":1}}` + "\n")
	cmd := exec.Command(openssl, "dgst", "-sha256", "-hmac", secret, "-r")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	hexMAC, _, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if got := Sign([]byte(secret), body); got != "sha256="+hexMAC {
		t.Fatalf("Sign = %s, openssl says sha256=%s", got, hexMAC)
	}
}
