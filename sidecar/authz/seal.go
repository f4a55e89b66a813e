package authz

// Rejection keys.
//
// A rejection is rendered by a second request (NGINX's error_page to
// RenderPath), which the upstream block may send to another authz instance
// than the one that decided. So the key NGINX carries between the two is the
// rejection itself — status, headers, body — sealed with HMAC-SHA256 under
// Options.Secret: any instance with the same secret renders it exactly, none
// needs to have kept it, and nobody without the secret can make an instance
// render an answer it did not decide.
//
//	key = base64url( version | expiry | nonce | status | content type | headers | body | MAC )
//
// version is one byte (1); expiry is unix milliseconds (8 bytes, big
// endian); nonce is 12 random bytes (each key is distinct, and an instance
// renders a nonce once); status is 2 bytes; strings are a uvarint length and
// the bytes; headers are a uvarint count of name/value pairs; MAC is the
// first 16 bytes of HMAC-SHA256(secret, everything before it).

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/contentguard/contentguard/edge/problem"
)

const (
	keyVersion  = 1
	nonceBytes  = 12
	macBytes    = 16
	minSecret   = 32
	maxKeyBytes = 12 << 10 // encoded; server.conf gives the authz answer's head 16 KiB
)

var errBadKey = errors.New("authz: bad rejection key")

// sealer seals rejections into keys and opens them.
type sealer struct {
	secret []byte
}

// newSecret is a random secret, for an instance configured without one.
func newSecret() ([]byte, error) {
	b := make([]byte, minSecret)
	_, err := rand.Read(b)
	return b, err
}

// seal returns the key for rej, valid until expires, and its nonce. A
// rejection whose key would be longer than maxKeyBytes (a problem document
// echoing a very long path) is sealed with its body's detail and instance
// left out.
func (s *sealer) seal(rej rejection, expires time.Time) (key, nonce string, err error) {
	n := make([]byte, nonceBytes)
	if _, err := rand.Read(n); err != nil {
		return "", "", err
	}
	key = s.encode(rej, n, expires)
	if len(key) > maxKeyBytes {
		rej.body = shortProblem(rej.body)
		key = s.encode(rej, n, expires)
	}
	if len(key) > maxKeyBytes {
		return "", "", errors.New("authz: rejection too large to seal")
	}
	return key, string(n), nil
}

func (s *sealer) encode(rej rejection, nonce []byte, expires time.Time) string {
	b := make([]byte, 0, 64+len(rej.body)+64*len(rej.header))
	b = append(b, keyVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(expires.UnixMilli()))
	b = append(b, nonce...)
	b = binary.BigEndian.AppendUint16(b, uint16(rej.status))
	b = appendString(b, rej.contentType)
	names := make([]string, 0, len(rej.header))
	pairs := 0
	for name, values := range rej.header {
		names = append(names, name)
		pairs += len(values)
	}
	sort.Strings(names)
	b = binary.AppendUvarint(b, uint64(pairs))
	for _, name := range names {
		for _, v := range rej.header[name] {
			b = appendString(appendString(b, name), v)
		}
	}
	b = appendString(b, string(rej.body))
	b = append(b, s.mac(b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sealer) mac(b []byte) []byte {
	m := hmac.New(sha256.New, s.secret)
	m.Write(b)
	return m.Sum(nil)[:macBytes]
}

func appendString(b []byte, v string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(v))), v...)
}

// open checks key's MAC and expiry and returns the rejection and its nonce.
func (s *sealer) open(key string, now time.Time) (rejection, string, error) {
	if len(key) > maxKeyBytes {
		return rejection{}, "", errBadKey
	}
	b, err := base64.RawURLEncoding.DecodeString(key)
	if err != nil || len(b) < 1+8+nonceBytes+2+macBytes {
		return rejection{}, "", errBadKey
	}
	body, sum := b[:len(b)-macBytes], b[len(b)-macBytes:]
	if !hmac.Equal(sum, s.mac(body)) {
		return rejection{}, "", errBadKey
	}
	if body[0] != keyVersion {
		return rejection{}, "", errBadKey
	}
	if !now.Before(time.UnixMilli(int64(binary.BigEndian.Uint64(body[1:9])))) {
		return rejection{}, "", errBadKey // expired
	}
	nonce := string(body[9 : 9+nonceBytes])
	r := keyReader{b: body[9+nonceBytes:]}
	rej := rejection{status: int(r.uint16()), contentType: r.string(), header: http.Header{}}
	for pairs := r.uvarint(); pairs > 0 && r.err == nil; pairs-- {
		name := r.string()
		rej.header[name] = append(rej.header[name], r.string())
	}
	rej.body = []byte(r.string())
	if r.err != nil || len(r.b) != 0 {
		return rejection{}, "", errBadKey
	}
	return rej, nonce, nil
}

// keyReader reads the fields of a key whose MAC held (so a short read is a
// bug of encode, not an attack, but is still refused).
type keyReader struct {
	b   []byte
	err error
}

func (r *keyReader) uint16() uint16 {
	if len(r.b) < 2 {
		r.err = errBadKey
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *keyReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errBadKey
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *keyReader) string() string {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errBadKey
		return ""
	}
	v := string(r.b[:n])
	r.b = r.b[n:]
	return v
}

// shortProblem is a problem document without its detail and instance (which
// may echo the request's path), or body itself if it is not one.
func shortProblem(body []byte) []byte {
	var p problem.Problem
	dec := json.NewDecoder(bytes.NewReader(body))
	if dec.Decode(&p) != nil {
		return body
	}
	p.Detail, p.Instance = "", ""
	return p.JSON()
}
