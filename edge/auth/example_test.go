package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/contentguard/contentguard/edge/auth"
	"github.com/golang-jwt/jwt/v5"
)

func Example() {
	// The issuer's key and its published JWKS.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks, _ := auth.MarshalJWKS(map[string]crypto.PublicKey{"k1": &key.PublicKey})

	v, err := auth.NewVerifier(context.Background(), []auth.Provider{{
		Name:       "main",
		Issuer:     "https://auth.contentguard.local",
		Audiences:  []string{"content-api"},
		Algorithms: []string{"ES256"},
		JWKSInline: string(jwks),
		ClockSkew:  30 * time.Second,
	}}, auth.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer v.Close()

	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": "https://auth.contentguard.local", "aud": "content-api", "sub": "alice",
		"scope": "read write", "exp": time.Now().Add(time.Minute).Unix(),
	})
	tok.Header["kid"] = "k1"
	signed, _ := tok.SignedString(key)

	id, reason := v.Verify(context.Background(), signed)
	fmt.Printf("%q %s %v\n", reason, id.Subject, id.Scopes)
	_, reason = v.Verify(context.Background(), signed[:len(signed)-2])
	fmt.Println(reason)

	ring := auth.NewKeyring([]auth.APIKey{{ID: "batch-importer", SHA256: sha256.Sum256([]byte("test")), Scopes: []string{"read"}}})
	k, ok := ring.Lookup("test")
	fmt.Println(k.ID, ok)
	// Output:
	// "" alice [read write]
	// bad_signature
	// batch-importer true
}
