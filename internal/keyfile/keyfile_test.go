package keyfile

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func pemOf(t *testing.T, typ string, der []byte) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// TestParsePrivateKey: every PEM form the issuer, the CLI and the fixtures
// use parses to a signer of its type; anything else is refused by name.
func TestParsePrivateKey(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	sec1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		pem  []byte
		want string
	}{
		{"PKCS#8 EC", pemOf(t, "PRIVATE KEY", pkcs8(ec)), "*ecdsa.PrivateKey"},
		{"PKCS#8 RSA", pemOf(t, "PRIVATE KEY", pkcs8(rk)), "*rsa.PrivateKey"},
		{"PKCS#8 Ed25519", pemOf(t, "PRIVATE KEY", pkcs8(ed)), "ed25519.PrivateKey"},
		{"SEC 1", pemOf(t, "EC PRIVATE KEY", sec1), "*ecdsa.PrivateKey"},
		{"PKCS#1", pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk)), "*rsa.PrivateKey"},
	} {
		k, err := ParsePrivateKey(c.pem)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := fmt.Sprintf("%T", k); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"not PEM", []byte("hello"), "no PEM block"},
		{"a certificate", pemOf(t, "CERTIFICATE", []byte{1, 2, 3}), `PEM block "CERTIFICATE" is not a private key`},
		{"garbage in a key block", pemOf(t, "PRIVATE KEY", []byte{1, 2, 3}), "parse PRIVATE KEY"},
		{"a public key", pemOf(t, "PUBLIC KEY", []byte{1}), "is not a private key"},
	} {
		if _, err := ParsePrivateKey(c.data); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// TestReadIsBoundedAndStrict: a read error is an error — a directory, a
// missing file — never an empty or shorter key; a file over MaxBytes is
// refused without reading it whole; a secret loses its final line ending.
func TestReadIsBoundedAndStrict(t *testing.T) {
	dir := t.TempDir()
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "read "+dir) {
		t.Errorf("a directory: %v", err)
	}
	if _, err := Read(filepath.Join(dir, "missing.pem")); err == nil || !os.IsNotExist(err) {
		t.Errorf("a missing file: %v", err)
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, make([]byte, MaxBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(big); err == nil || !strings.Contains(err.Error(), "larger than 1048576 bytes") {
		t.Errorf("an oversized file: %v", err)
	}
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cret value\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadSecret(secret); err != nil || string(b) != "s3cret value" {
		t.Errorf("secret %q %v", b, err)
	}
	if _, err := ReadPrivateKey(secret); err == nil || !strings.Contains(err.Error(), secret+": no PEM block") {
		t.Errorf("a secret as a key: %v", err)
	}
	if got := Resolve("/etc/cg", "keys/a.pem"); got != "/etc/cg/keys/a.pem" {
		t.Errorf("Resolve relative: %s", got)
	}
	if got := Resolve("/etc/cg", "/abs.pem"); got != "/abs.pem" {
		t.Errorf("Resolve absolute: %s", got)
	}
}
