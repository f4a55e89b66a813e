package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"

	"github.com/contentguard/contentguard/edge/auth"
)

// rfc7638N is the RSA modulus of the RFC 7638 §3.1 example key.
const rfc7638N = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"

func TestThumbprintRFCVectors(t *testing.T) {
	// RFC 7638 §3.1.
	n, _ := base64.RawURLEncoding.DecodeString(rfc7638N)
	got, err := auth.Thumbprint(&rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537})
	if err != nil || got != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Errorf("RSA thumbprint %q, %v", got, err)
	}
	// RFC 8037 §A.3.
	x, _ := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	got, err = auth.Thumbprint(ed25519.PublicKey(x))
	if err != nil || got != "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k" {
		t.Errorf("Ed25519 thumbprint %q, %v", got, err)
	}
	if _, err := auth.Thumbprint("not a key"); err == nil {
		t.Error("thumbprint of a string: no error")
	}
}

func TestMarshalParseJWKSRoundTrip(t *testing.T) {
	k := fixtureKeys(t)
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]crypto.PublicKey{
		"ec":   &k.ec256.PublicKey,
		"ec3":  &k.ec384.PublicKey,
		"ec5":  &p521.PublicKey,
		"rsa":  &k.rsa.PublicKey,
		"ed":   k.ed.Public(),
		"":     &k.ec256b.PublicKey, // gets its thumbprint as kid
		"same": &k.ec256.PublicKey,
	}
	doc, err := auth.MarshalJWKS(in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(doc), `"d"`) {
		t.Fatalf("private member in %s", doc)
	}
	out, err := auth.ParseJWKS(doc)
	if err != nil {
		t.Fatalf("ParseJWKS(MarshalJWKS): %v\n%s", err, doc)
	}
	tp, _ := auth.Thumbprint(&k.ec256b.PublicKey)
	wantAlg := map[string]string{"ec": "ES256", "ec3": "ES384", "ec5": "ES512", "rsa": "RS256", "ed": "EdDSA", tp: "ES256", "same": "ES256"}
	if len(out) != len(wantAlg) {
		t.Fatalf("%d keys back, want %d: %s", len(out), len(wantAlg), doc)
	}
	for kid, alg := range wantAlg {
		got, ok := out[kid]
		if !ok {
			t.Fatalf("kid %q missing from %v", kid, out)
		}
		if got.Algorithm != alg || got.KeyID != kid {
			t.Errorf("kid %q: alg %q id %q, want %q", kid, got.Algorithm, got.KeyID, alg)
		}
		src := in[kid]
		if kid == tp {
			src = in[""]
		}
		if eq, ok := src.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(got.Key) {
			t.Errorf("kid %q: key differs after round trip", kid)
		}
	}
}

func TestMarshalJWKSRefusesSecrets(t *testing.T) {
	k := fixtureKeys(t)
	for name, key := range map[string]crypto.PublicKey{
		"ecdsa private": k.ec256,
		"rsa private":   k.rsa,
		"ed private":    k.ed,
		"hmac secret":   k.secret,
		"nil ecdsa":     (*ecdsa.PublicKey)(nil),
	} {
		if _, err := auth.MarshalJWKS(map[string]crypto.PublicKey{"k": key}); err == nil {
			t.Errorf("%s: marshalled", name)
		}
	}
}

func TestParseJWKS(t *testing.T) {
	k := fixtureKeys(t)
	ec := jwksFor(t, map[string]crypto.PublicKey{"a": &k.ec256.PublicKey}, nil)
	x := func(s string) string {
		const members = `"kid":"a","use":"sig","alg":"ES256"`
		if !strings.Contains(ec, members) {
			t.Fatalf("unexpected JWKS layout %s", ec)
		}
		return strings.Replace(ec, members, s, 1)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallN := base64.RawURLEncoding.EncodeToString(small.N.Bytes())
	tests := []struct {
		name    string
		doc     string
		wantErr string // "" = valid
		kids    int
	}{
		{"one EC key", ec, "", 1},
		{"padded base64 tolerated", strings.Replace(ec, `","y"`, `=","y"`, 1), "", 1},
		{"enc key skipped, none left", x(`"kid":"a","use":"enc"`), "no usable", 0},
		{"unknown kty skipped", `{"keys":[{"kty":"XYZ","kid":"q"},` + ec[len(`{"keys":[`):], "", 1},
		{"X25519 skipped", `{"keys":[{"kty":"OKP","crv":"X25519","x":"AAAA"}]}`, "no usable", 0},
		{"oct key parsed", `{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`, "", 1},
		{"empty oct", `{"keys":[{"kty":"oct","kid":"h","k":""}]}`, "missing", 0},
		{"not JSON", `{"keys":`, "decode", 0},
		{"keys not an array", `{"keys":{}}`, "decode", 0},
		{"empty", `{"keys":[]}`, "no usable", 0},
		{"duplicate kid", `{"keys":[` + ec[len(`{"keys":[`):len(ec)-2] + `,` + ec[len(`{"keys":[`):], "duplicate kid", 0},
		{"alg does not fit key", x(`"kid":"a","alg":"RS256"`), "does not fit", 0},
		{"alg none", x(`"kid":"a","alg":"none"`), "does not fit", 0},
		{"private EC key", x(`"kid":"a","use":"sig","d":"AAAA"`), "private key material", 0},
		{"point off the curve", offCurve(t, ec), "not on P-256", 0},
		{"short coordinate", `{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]}`, "want 32", 0},
		{"bad base64", `{"keys":[{"kty":"EC","crv":"P-256","x":"!!!!","y":"AAAA"}]}`, "illegal base64", 0},
		{"unknown curve skipped", `{"keys":[{"kty":"EC","crv":"P-999","x":"AAAA","y":"AAAA"}]}`, "no usable", 0},
		{"RSA 1024 refused", `{"keys":[{"kty":"RSA","n":"` + smallN + `","e":"AQAB"}]}`, "RSA modulus of 1024 bits", 0},
		{"RSA even exponent", `{"keys":[{"kty":"RSA","n":"` + base64.RawURLEncoding.EncodeToString(k.rsa.N.Bytes()) + `","e":"Ag"}]}`, "exponent 2 invalid", 0},
		{"RSA huge exponent", `{"keys":[{"kty":"RSA","n":"` + base64.RawURLEncoding.EncodeToString(k.rsa.N.Bytes()) + `","e":"AQAAAAAB"}]}`, "exponent too large", 0},
		{"Ed25519 short", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}`, "want 32", 0},
		{"too many keys", `{"keys":[` + strings.Repeat(`{"kty":"XYZ"},`, 100) + `{"kty":"XYZ"}]}`, "at most 100", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := auth.ParseJWKS([]byte(tc.doc))
			if tc.wantErr == "" {
				if err != nil || len(keys) != tc.kids {
					t.Fatalf("got %d keys, %v; want %d", len(keys), err, tc.kids)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// offCurve returns the EC JWKS with its y coordinate's last byte changed, so
// the point is (with overwhelming probability) not on the curve.
func offCurve(t *testing.T, ec string) string {
	i := strings.Index(ec, `"y":"`)
	if i < 0 {
		t.Fatal("no y")
	}
	i += len(`"y":"`)
	j := i + strings.IndexByte(ec[i:], '"')
	y, err := base64.RawURLEncoding.DecodeString(ec[i:j])
	if err != nil {
		t.Fatal(err)
	}
	y[len(y)-1] ^= 1
	return ec[:i] + base64.RawURLEncoding.EncodeToString(y) + ec[j:]
}

func thumbprintNative(pub crypto.PublicKey) (string, error) { return auth.Thumbprint(pub) }
