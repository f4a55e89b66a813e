package conformance

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// CurlExample is one request shown in a guide as a shell session
//
//	$ curl -i [-H 'Name: value']... HOST/path
//	HTTP/1.1 STATUS ...
//	Header: value
//	…
//	{"problem": "members"}
//
// which a data plane's test sends and checks: the status, each header
// shown (X-Request-ID, fresh each time, only for presence) and the
// problem's members. Lines with "…" stand for more and are not compared.
type CurlExample struct {
	Line   int // of the curl command, 1-based
	Path   string
	Header http.Header
	Status int
	Shown  [][2]string // headers, in order
	// Members are the `"name":value` pairs of the body shown, verbatim.
	Members []string
}

var (
	curlLine   = regexp.MustCompile(`^\$ curl -i((?: -H '[^']+')*) (\S+?)(/\S*)$`)
	curlHeader = regexp.MustCompile(`'([^:']+): ([^']+)'`)
	member     = regexp.MustCompile(`"(\w+)":("[^"…]*"|\d+)`)
)

// CurlExamples returns the examples of doc sent to host (as written in
// the command, "localhost:8000"), or an error naming a line that is not
// of the form above.
func CurlExamples(doc []byte, host string) ([]CurlExample, error) {
	var out []CurlExample
	lines := strings.Split(string(doc), "\n")
	for i := 0; i < len(lines); i++ {
		m := curlLine.FindStringSubmatch(lines[i])
		if m == nil || m[2] != host {
			continue
		}
		ex := CurlExample{Line: i + 1, Path: m[3], Header: http.Header{}}
		for _, hv := range curlHeader.FindAllStringSubmatch(m[1], -1) {
			ex.Header.Add(hv[1], hv[2])
		}
		i++
		status, err := strconv.Atoi(strings.Fields(lines[i] + " x x")[1])
		if err != nil || !strings.HasPrefix(lines[i], "HTTP/1.1 ") {
			return nil, fmt.Errorf("line %d: %q is not a status line", i+1, lines[i])
		}
		ex.Status = status
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			line := lines[i]
			switch {
			case strings.Contains(line, "…") && !strings.HasPrefix(line, "{"):
			case strings.HasPrefix(line, "{"):
				for _, kv := range member.FindAllStringSubmatch(line, -1) {
					ex.Members = append(ex.Members, kv[0])
				}
			default:
				name, value, ok := strings.Cut(line, ": ")
				if !ok {
					return nil, fmt.Errorf("line %d: %q is not a header", i+1, line)
				}
				ex.Shown = append(ex.Shown, [2]string{name, value})
			}
		}
		out = append(out, ex)
	}
	return out, nil
}

// Check lists where an answer differs from the example.
func (ex CurlExample) Check(status int, header http.Header, body []byte) []string {
	var out []string
	if status != ex.Status {
		out = append(out, fmt.Sprintf("status %d, the example shows %d", status, ex.Status))
	}
	for _, kv := range ex.Shown {
		if g := header.Get(kv[0]); g == "" || !strings.EqualFold(kv[0], "X-Request-ID") && g != kv[1] {
			out = append(out, fmt.Sprintf("%s is %q, the example shows %q", kv[0], g, kv[1]))
		}
	}
	for _, m := range ex.Members {
		if !strings.Contains(string(body), m) {
			out = append(out, fmt.Sprintf("the body has no %s: %s", m, body))
		}
	}
	return out
}
