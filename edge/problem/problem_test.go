package problem

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNewAndTypeURI(t *testing.T) {
	p := New(429, "rate-limited", "", "try again in 20s")
	want := Problem{Type: "https://contentguard.dev/problems/rate-limited", Title: "Too Many Requests", Status: 429, Detail: "try again in 20s"}
	if p != want {
		t.Errorf("New = %+v, want %+v", p, want)
	}
	if p := New(403, "insufficient-scope", "Scope missing", ""); p.Title != "Scope missing" {
		t.Errorf("explicit title replaced: %q", p.Title)
	}
	if got := TypeURI(""); got != "about:blank" {
		t.Errorf("TypeURI(\"\") = %q", got)
	}
}

func TestJSON(t *testing.T) {
	cases := []struct {
		p    Problem
		want string
	}{
		{Problem{}, `{"type":"","title":"","status":0}`},
		{New(404, "no-route", "Not Found", ""), `{"type":"https://contentguard.dev/problems/no-route","title":"Not Found","status":404}`},
		{Problem{Type: "about:blank", Title: "Unauthorized", Status: 401, Detail: "token expired", Instance: "/api/v1/x", RequestID: "0190a5f2-7c3e-7b1a-9c2d-3e4f5a6b7c8d", Reason: "jwt_expired"},
			`{"type":"about:blank","title":"Unauthorized","status":401,"detail":"token expired","instance":"/api/v1/x","request_id":"0190a5f2-7c3e-7b1a-9c2d-3e4f5a6b7c8d","reason":"jwt_expired"}`},
		{Problem{Title: "q\"b\\s/\b\f\n\r\t\x00\x1f\x7f"}, `{"type":"","title":"q\"b\\s/\b\f\n\r\t\u0000\u001f` + "\x7f" + `","status":0}`},
		{Problem{Title: "<script>&amp;</script>"}, `{"type":"","title":"\u003cscript\u003e\u0026amp;\u003c/script\u003e","status":0}`},
		{Problem{Title: "a\u2028b\u2029c"}, `{"type":"","title":"a\u2028b\u2029c","status":0}`},
		{Problem{Title: "bad \xff\xfe utf8 \xe2\x82"}, `{"type":"","title":"bad \ufffd\ufffd utf8 \ufffd\ufffd","status":0}`},
		{Problem{Title: "caf\u00e9 \U0001F600"}, `{"type":"","title":"café 😀","status":0}`},
		{Problem{Status: -1}, `{"type":"","title":"","status":-1}`},
	}
	for _, c := range cases {
		got := string(c.p.JSON())
		if got != c.want {
			t.Errorf("JSON(%+v)\n got %s\nwant %s", c.p, got, c.want)
		}
		std, err := json.Marshal(c.p)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(std) {
			t.Errorf("JSON differs from encoding/json\n got %s\n std %s", got, std)
		}
	}
}

func TestJSONAllocations(t *testing.T) {
	p := Problem{Type: TypeURI("rate-limited"), Title: "Too Many Requests", Status: 429, Detail: "retry in 20s", RequestID: "0190a5f2-7c3e-7b1a-9c2d-3e4f5a6b7c8d", Reason: "rate_limited"}
	if n := testing.AllocsPerRun(100, func() { p.JSON() }); n != 1 {
		t.Errorf("JSON allocates %v times, want 1", n)
	}
}

// replaceInvalid is what JSON encoding does to invalid UTF-8: each bad byte
// becomes U+FFFD.
func replaceInvalid(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r)
		i += size
	}
	return b.String()
}

func FuzzJSON(f *testing.F) {
	f.Add("https://contentguard.dev/problems/x", "Title", 429, "detail \"quoted\"", "/p", "id-1", "reason_code")
	f.Add("", "", 0, "\u2028\u2029<>&", "", "", "")
	f.Add("\xff", "\x00\x1f", -5, "\xe2\x82", "a\\b", "\n", "\t")
	f.Fuzz(func(t *testing.T, typ, title string, status int, detail, instance, requestID, reason string) {
		p := Problem{Type: typ, Title: title, Status: status, Detail: detail, Instance: instance, RequestID: requestID, Reason: reason}
		out := p.JSON()
		if !json.Valid(out) {
			t.Fatalf("invalid JSON: %q", out)
		}
		var back Problem
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("unmarshal %q: %v", out, err)
		}
		want := Problem{Type: replaceInvalid(typ), Title: replaceInvalid(title), Status: status, Detail: replaceInvalid(detail),
			Instance: replaceInvalid(instance), RequestID: replaceInvalid(requestID), Reason: replaceInvalid(reason)}
		if back != want {
			t.Fatalf("round trip\n got %+v\nwant %+v", back, want)
		}
		std, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, std) {
			t.Fatalf("differs from encoding/json\n got %s\n std %s", out, std)
		}
	})
}

func BenchmarkJSON(b *testing.B) {
	p := Problem{Type: TypeURI("rate-limited"), Title: "Too Many Requests", Status: 429, Detail: "retry in 20s", RequestID: "0190a5f2-7c3e-7b1a-9c2d-3e4f5a6b7c8d", Reason: "rate_limited"}
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			_ = p.JSON()
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			_, _ = json.Marshal(p)
		}
	})
}

func TestSpecialChars(t *testing.T) {
	for c := 0; c < 256; c++ {
		want := c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&'
		if got := strings.IndexByte(specialChars, byte(c)) >= 0; got != want {
			t.Errorf("byte %#x: in specialChars = %v, want %v", c, got, want)
		}
	}
}
