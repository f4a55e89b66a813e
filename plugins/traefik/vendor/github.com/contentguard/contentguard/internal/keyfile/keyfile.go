// Package keyfile reads key material: secret, PEM and JWKS files — bounded,
// and failing on any read error, never handing on a shorter key — and PEM
// private keys (PKCS#8, SEC 1 EC, PKCS#1 RSA). The JWT verifier and the
// engine (package edge), the token issuer, the CLI and the conformance
// fixtures all read keys through it; JWKS documents are then parsed by
// edge/auth.ParseJWKS.
//
// It runs under the Yaegi interpreter (the verifier and the engine read key
// files there): standard library only, no generics.
package keyfile

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// MaxBytes bounds a key file: real ones are a few KiB.
const MaxBytes = 1 << 20

// Resolve is path relative to base (the directory of the policy that names
// it), unless path is absolute or base is "".
func Resolve(base, path string) string {
	if filepath.IsAbs(path) || base == "" {
		return path
	}
	return filepath.Join(base, path)
}

// Read returns the content of the key file at path: at most MaxBytes, and
// any read error is an error.
func Read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > MaxBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, MaxBytes)
	}
	return data, nil
}

// ReadSecret is Read for a shared secret: the file's content without the
// line ending an editor leaves at its end.
func ReadSecret(path string) ([]byte, error) {
	data, err := Read(path)
	if err != nil {
		return nil, err
	}
	return []byte(strings.TrimRight(string(data), "\r\n")), nil
}

// ParsePrivateKey decodes the first PEM block of data as a private key that
// can sign: PKCS#8 ("PRIVATE KEY"), SEC 1 ("EC PRIVATE KEY") or PKCS#1
// ("RSA PRIVATE KEY").
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", block.Type, err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T cannot sign", key)
	}
	return s, nil
}

// ReadPrivateKey reads and parses the PEM private key file at path; errors
// name the file.
func ReadPrivateKey(path string) (crypto.Signer, error) {
	data, err := Read(path)
	if err != nil {
		return nil, err
	}
	key, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}
