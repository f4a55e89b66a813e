package webhook

import (
	"bytes"
	"errors"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
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

func TestSignTimestampedBindsTheTimestamp(t *testing.T) {
	secret := []byte("s3cret-s3cret-s3cret")
	body := []byte(`{"id":"dlv_1","event":"batch_completed"}`)
	sig := SignTimestamped(secret, "1795780800", body)
	if !strings.HasPrefix(sig, "sha256=") || len(sig) != len("sha256=")+64 {
		t.Fatalf("SignTimestamped = %q", sig)
	}
	if sig == Sign(secret, body) {
		t.Fatal("the timestamped signature equals the body-only one")
	}
	cases := []struct {
		name, ts string
		body     []byte
		sig      string
		ok       bool
	}{
		{"valid", "1795780800", body, sig, true},
		{"other timestamp", "1795780801", body, sig, false},
		{"timestamp moved into the body", "", append([]byte("1795780800."), body...), sig, false},
		{"tampered body", "1795780800", []byte(`{"id":"dlv_2"}`), sig, false},
		{"body-only signature", "1795780800", body, Sign(secret, body), false},
	}
	for _, c := range cases {
		if got := VerifyTimestamped(secret, c.ts, c.body, c.sig); got != c.ok {
			t.Errorf("%s: VerifyTimestamped = %v, want %v", c.name, got, c.ok)
		}
	}
	if VerifyTimestamped(nil, "1", body, SignTimestamped(nil, "1", body)) {
		t.Error("an empty secret verified")
	}
}

// TestSignTimestampedMatchesOpenSSL: what a shell receiver computes,
// printf '%s.' "$TS" | cat - body | openssl dgst -sha256 -hmac "$SECRET".
func TestSignTimestampedMatchesOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl is needed for this test: %v", err)
	}
	secret, ts := "whsec-0123456789abcdef", "1795780800"
	body := []byte(`{"id":"dlv_x","event":"analysis_completed","data":{"n":1}}`)
	cmd := exec.Command(openssl, "dgst", "-sha256", "-hmac", secret, "-r")
	cmd.Stdin = bytes.NewReader(append([]byte(ts+"."), body...))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	hexMAC, _, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if got := SignTimestamped([]byte(secret), ts, body); got != "sha256="+hexMAC {
		t.Fatalf("SignTimestamped = %s, openssl says sha256=%s", got, hexMAC)
	}
}

func TestVerifyRequestEnforcesTheReplayWindow(t *testing.T) {
	secret := []byte("s3cret-s3cret-s3cret")
	body := []byte(`{"id":"dlv_1"}`)
	now := time.Unix(1795780800, 0)
	signed := func(at time.Time) http.Header {
		ts := strconv.FormatInt(at.Unix(), 10)
		h := http.Header{}
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignatureV2, SignTimestamped(secret, ts, body))
		return h
	}
	for _, c := range []struct {
		name string
		h    http.Header
		want error
	}{
		{"fresh", signed(now.Add(-30 * time.Second)), nil},
		{"at the edge", signed(now.Add(-DefaultTolerance)), nil},
		{"too old", signed(now.Add(-DefaultTolerance - time.Second)), ErrStaleTimestamp},
		{"from the future", signed(now.Add(DefaultTolerance + time.Second)), ErrStaleTimestamp},
		{"timestamp replaced", func() http.Header {
			h := signed(now.Add(-time.Hour))
			h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
			return h
		}(), ErrBadSignature},
		{"no signature", http.Header{HeaderTimestamp: {"1795780800"}}, ErrBadSignature},
		{"not a number", func() http.Header {
			h := http.Header{}
			h.Set(HeaderTimestamp, "soon")
			h.Set(HeaderSignatureV2, SignTimestamped(secret, "soon", body))
			return h
		}(), ErrStaleTimestamp},
	} {
		if err := VerifyRequest(secret, body, c.h, now, DefaultTolerance); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: VerifyRequest = %v, want %v", c.name, err, c.want)
		}
	}
}
