package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/contentguard/contentguard/edge/auth"
	"github.com/contentguard/contentguard/internal/keyfile"
)

const tokenHelp = `Usage: contentguard token <subcommand> [flags]

Subcommands:
  keygen   generate an ES256 signing key and its JWKS
  mint     sign a development access token

Run 'contentguard token <subcommand> --help' for flags.
`

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return sub(ctx, "token", args, stdout, stderr, map[string]func(context.Context, []string, io.Writer, io.Writer) int{
		"keygen": runTokenKeygen,
		"mint":   runTokenMint,
	}, tokenHelp)
}

func runTokenKeygen(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("token keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "keys", "directory for signing.pem (private, 0600) and jwks.json (public)")
	force := fs.Bool("force", false, "overwrite existing files")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: contentguard token keygen [--out DIR] [--force]\n\nWrites an ES256 private key (PKCS#8 PEM) and a JWKS holding its public key,\nwith the RFC 7638 thumbprint as kid.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	kid, err := writeKeyPair(*out, *force)
	if err != nil {
		fmt.Fprintf(stderr, "contentguard token keygen: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s and %s (kid %s)\n", filepath.Join(*out, "signing.pem"), filepath.Join(*out, "jwks.json"), kid)
	return 0
}

// writeKeyPair generates an ES256 key into dir/signing.pem and its public
// JWKS into dir/jwks.json, and returns the key id.
func writeKeyPair(dir string, force bool) (string, error) {
	keyPath, jwksPath := filepath.Join(dir, "signing.pem"), filepath.Join(dir, "jwks.json")
	if !force {
		for _, p := range []string{keyPath, jwksPath} {
			if _, err := os.Stat(p); err == nil {
				return "", fmt.Errorf("%s exists (use --force to replace it)", p)
			}
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", fmt.Errorf("encode key: %w", err)
	}
	kid, err := auth.Thumbprint(&key.PublicKey)
	if err != nil {
		return "", err
	}
	jwks, err := auth.MarshalJWKS(map[string]crypto.PublicKey{kid: &key.PublicKey})
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", err
	}
	if err := os.WriteFile(jwksPath, append(jwks, '\n'), 0o644); err != nil {
		return "", err
	}
	return kid, nil
}

func runTokenMint(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("token mint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyFile := fs.String("key", "keys/signing.pem", "PKCS#8 PEM private key (EC P-256, RSA or Ed25519)")
	subject := fs.String("sub", "", "subject (required)")
	scope := fs.String("scope", "", `space-separated scopes, e.g. "read write"`)
	aud := fs.String("aud", "content-api", "audience")
	iss := fs.String("iss", "", "issuer (required)")
	ttl := fs.Duration("ttl", 30*time.Minute, "lifetime")
	kid := fs.String("kid", "", "key id header (default: the key's RFC 7638 thumbprint)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: contentguard token mint --key K --sub S --scope "read write" --aud A --iss I --ttl 30m`+"\n\nSigns a development access token and prints it.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if *subject == "" || *iss == "" {
		fmt.Fprintln(stderr, "contentguard token mint: --sub and --iss are required")
		return 2
	}
	if *ttl <= 0 {
		fmt.Fprintln(stderr, "contentguard token mint: --ttl must be positive")
		return 2
	}
	key, err := keyfile.ReadPrivateKey(*keyFile)
	if err != nil {
		fmt.Fprintf(stderr, "contentguard token mint: %v\n", err)
		return 1
	}
	tok, err := mintToken(key, *kid, jwt.MapClaims{
		"iss": *iss, "sub": *subject, "aud": *aud, "scope": strings.Join(strings.Fields(*scope), " "),
	}, *ttl, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "contentguard token mint: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, tok)
	return 0
}

// mintToken signs claims with key, adding iat, nbf, exp and the kid header.
func mintToken(key crypto.Signer, kid string, claims jwt.MapClaims, ttl time.Duration, now time.Time) (string, error) {
	var method jwt.SigningMethod
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			method = jwt.SigningMethodES256
		case elliptic.P384():
			method = jwt.SigningMethodES384
		default:
			return "", errors.New("unsupported EC curve")
		}
	case *rsa.PrivateKey:
		method = jwt.SigningMethodRS256
	case ed25519.PrivateKey:
		method = jwt.SigningMethodEdDSA
	default:
		return "", fmt.Errorf("unsupported key type %T", key)
	}
	if kid == "" {
		var err error
		if kid, err = auth.Thumbprint(key.Public()); err != nil {
			return "", err
		}
	}
	claims["iat"] = now.Unix()
	claims["nbf"] = now.Unix()
	claims["exp"] = now.Add(ttl).Unix()
	if s, ok := claims["scope"].(string); ok && s == "" {
		delete(claims, "scope")
	}
	t := jwt.NewWithClaims(method, claims)
	t.Header["kid"] = kid
	return t.SignedString(key)
}
