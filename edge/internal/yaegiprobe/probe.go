// Package yaegiprobe exists for the Yaegi tests of the edge packages: each
// function calls a package the way the engine does and flattens the outcome
// to a string. The test runs this one source twice — compiled, and
// interpreted by Yaegi — and requires the same answers (yaegi_test.go, kept
// here rather than in one of the edge packages so that their fuzz binaries
// do not carry the interpreter).
package yaegiprobe

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/contentguard/contentguard/edge/clientip"
	"github.com/contentguard/contentguard/edge/cors"
	"github.com/contentguard/contentguard/edge/problem"
	"github.com/contentguard/contentguard/edge/secheaders"
	"github.com/contentguard/contentguard/edge/urlpath"
	"github.com/contentguard/contentguard/internal/requestid"
)

// Normalize returns urlpath.Normalize(p), or "refused".
func Normalize(p string) string {
	out, ok := urlpath.Normalize(p)
	if !ok {
		return "refused"
	}
	return out
}

// ClientIP resolves the client of a request from peer carrying one
// forwarding header, behind 10.0.0.0/8 and 127.0.0.1.
func ClientIP(header, peer, value string) string {
	return ClientIPLoop(header, peer, value, 1)
}

// exampleCORS is the policy of the CORS probes.
func exampleCORS() (*cors.Policy, error) {
	return cors.New(cors.Config{
		AllowOrigins:  []string{"https://app.example.com", "https://*.example.org"},
		AllowMethods:  []string{"GET", "POST"},
		AllowHeaders:  []string{"Authorization", "Content-Type"},
		ExposeHeaders: []string{"X-Request-ID"},
	})
}

// Origin reports AllowedOrigin of the example policy.
func Origin(origin string) string {
	p, err := exampleCORS()
	if err != nil {
		return "error: " + err.Error()
	}
	return strconv.FormatBool(p.AllowedOrigin(origin))
}

// Preflight answers an OPTIONS preflight with the example policy.
func Preflight(origin, method, headers string) string {
	h := http.Header{}
	h.Set("Origin", origin)
	h.Set("Access-Control-Request-Method", method)
	if headers != "" {
		h.Set("Access-Control-Request-Headers", headers)
	}
	if !cors.IsPreflight("OPTIONS", h) {
		return "not a preflight"
	}
	p, err := exampleCORS()
	if err != nil {
		return "error: " + err.Error()
	}
	out, ok := p.Preflight(h)
	return strconv.FormatBool(ok) + " " + flatten(out)
}

// Actual returns the CORS headers of a simple request.
func Actual(origin string) string {
	p, err := exampleCORS()
	if err != nil {
		return "error: " + err.Error()
	}
	return flatten(p.Actual(origin))
}

// flatten renders a header list one "name: value" line each.
func flatten(hs [][2]string) string {
	var b strings.Builder
	for i := 0; i < len(hs); i++ {
		b.WriteString(hs[i][0] + ": " + hs[i][1] + "\n")
	}
	return b.String()
}

// Valid reports requestid.Valid(id).
func Valid(id string) string {
	return strconv.FormatBool(requestid.Valid(id))
}

// Generated makes n IDs with the format's generator and reports whether all
// are valid UUIDs of the right version and, for v7, strictly increasing.
func Generated(format string, n int) string {
	gen, err := requestid.ForFormat(format)
	if err != nil {
		return "error: " + err.Error()
	}
	prev := ""
	for i := 0; i < n; i++ {
		id := gen()
		if !requestid.Valid(id) || len(id) != 36 {
			return "invalid " + id
		}
		if format == "uuidv7" && (id[14] != '7' || id <= prev) {
			return "not v7 or not increasing: " + prev + " " + id
		}
		if format == "uuidv4" && id[14] != '4' {
			return "not v4: " + id
		}
		prev = id
	}
	v7 := requestid.NewV7()
	if v7[14] != '7' || !requestid.Valid(v7) {
		return "NewV7 " + v7
	}
	return "ok"
}

// Resolve keeps or replaces an incoming ID; the generator returns "fresh".
func Resolve(incoming string, trust bool) string {
	id, generated := requestid.Resolve(incoming, trust, func() string { return "fresh" })
	return id + " " + strconv.FormatBool(generated)
}

// Strict renders the strict security headers.
func Strict(tls bool) string {
	return flatten(secheaders.Strict(tls))
}

// Custom renders a one-header custom set, or "error".
func Custom(name, value string) string {
	hs, err := secheaders.Custom(map[string]string{name: value})
	if err != nil {
		return "error"
	}
	return flatten(hs)
}

// Problem renders a problem document with a request ID and a reason.
func Problem(status int, slug, title, detail, requestID string) string {
	p := problem.New(status, slug, title, detail)
	p.RequestID = requestID
	p.Reason = "test_reason"
	return string(p.JSON())
}

// The loops below repeat one per-request operation n times on objects built
// once, so a benchmark measures the operation, not the set-up or the call
// into the interpreter.

// NormalizeLoop normalises p n times.
func NormalizeLoop(p string, n int) string {
	out := ""
	for i := 0; i < n; i++ {
		out = Normalize(p)
	}
	return out
}

// ValidLoop checks id n times.
func ValidLoop(id string, n int) string {
	ok := false
	for i := 0; i < n; i++ {
		ok = requestid.Valid(id)
	}
	return strconv.FormatBool(ok)
}

// NewV7Loop generates n UUIDv7s with a ForFormat generator.
func NewV7Loop(n int) string {
	gen, err := requestid.ForFormat("uuidv7")
	if err != nil {
		return "error: " + err.Error()
	}
	id := ""
	for i := 0; i < n; i++ {
		id = gen()
	}
	return id
}

// ClientIPLoop resolves the client of one request n times.
func ClientIPLoop(header, peer, value string, n int) string {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
	r, err := clientip.New(trusted, []string{header})
	if err != nil {
		return "error: " + err.Error()
	}
	h := http.Header{}
	h.Set(header, value)
	addr := netip.MustParseAddr(peer)
	out := netip.Addr{}
	for i := 0; i < n; i++ {
		out = r.ClientIP(addr, h)
	}
	return out.String()
}

// PreflightLoop answers one preflight n times with the example policy.
func PreflightLoop(origin, method, headers string, n int) string {
	p, err := exampleCORS()
	if err != nil {
		return "error: " + err.Error()
	}
	h := http.Header{}
	h.Set("Origin", origin)
	h.Set("Access-Control-Request-Method", method)
	h.Set("Access-Control-Request-Headers", headers)
	ok := false
	for i := 0; i < n; i++ {
		_, ok = p.Preflight(h)
	}
	return strconv.FormatBool(ok)
}

// ProblemLoop renders one problem document n times.
func ProblemLoop(detail string, n int) string {
	p := problem.New(429, "rate-limited", "", detail)
	p.RequestID = "0190a5f2-7c3e-7b1a-9c2d-3e4f5a6b7c8d"
	var out []byte
	for i := 0; i < n; i++ {
		out = p.JSON()
	}
	return string(out)
}

// OriginLoop checks one origin n times against the example policy.
func OriginLoop(origin string, n int) string {
	p, err := exampleCORS()
	if err != nil {
		return "error: " + err.Error()
	}
	ok := false
	for i := 0; i < n; i++ {
		ok = p.AllowedOrigin(origin)
	}
	return strconv.FormatBool(ok)
}
