package kong

import (
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/Kong/go-pdk/test"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/policy/policyfile"
)

// harnessPeer is the address go-pdk's harness answers kong.client.get_ip
// with, whatever the request.
const harnessPeer = "10.10.10.1"

// kongPlane runs the conformance suite through the plugin's Access and Log
// phases over go-pdk's test harness. Each instance is a plugin instance on
// a node of its own, started the way Kong starts one (its configuration
// decoded from JSON); each request is a fresh harness environment; the
// upstream's answer is the harness's service response.
type kongPlane struct{}

type kongInstance struct {
	node *Node
	cfg  *Config
}

func (kongPlane) Start(t testing.TB, policyPath string) conformance.Instance {
	node, err := NewNode(NodeOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = node.Close() })
	cfg := node.New().(*Config)
	conf, _ := json.Marshal(map[string]any{"policy_file": policyPath, "policy": nil, "upstream": nil, "__seq__": 1})
	if err := json.Unmarshal(conf, cfg); err != nil {
		t.Fatalf("start the instance: %v", err)
	}
	return &kongInstance{node: node, cfg: cfg}
}

func (in *kongInstance) Close() {}

func (in *kongInstance) Do(t testing.TB, req conformance.SentRequest, up conformance.Upstream) conformance.Response {
	x, err := newExchange(t, harnessRequest(req))
	if err != nil {
		t.Fatalf("the harness cannot represent %s %s: %v", req.Method, req.Path, err)
	}
	status := up.Status
	if status == 0 {
		status = http.StatusOK
	}
	x.do(in.cfg, test.Response{Status: status, Message: http.StatusText(status),
		Headers: http.Header{"Content-Type": {"text/plain"}}, Body: []byte("upstream says hello")})
	resp := conformance.Response{Status: x.ClientRes.Status, Header: x.ClientRes.Headers, Body: x.ClientRes.Body, Forwarded: !x.exited}
	if resp.Forwarded {
		resp.UpstreamHeader = x.ServiceReq.Headers
		u, err := url.Parse(x.ServiceReq.Url)
		if err != nil {
			t.Fatalf("upstream URL %q: %v", x.ServiceReq.Url, err)
		}
		resp.UpstreamPath = u.Path
	}
	return resp
}

// harnessRequest is a conformance request as the harness takes it, with
// what Kong's request would carry besides: Host and Content-Length.
//
// The harness insists on a body for POST, PUT and PATCH. A case that sends
// none gets a one-byte placeholder and no Content-Length: the plugin never
// reads a body (kong.request.get_raw_body is not among its calls), so every
// PDK answer it gets is the one Kong gives for the bodyless request.
func harnessRequest(req conformance.SentRequest) test.Request {
	h := req.Header.Clone()
	h.Set("Host", "edge.test")
	var body []byte
	switch {
	case req.BodyBytes > 0:
		body = []byte(strings.Repeat("x", req.BodyBytes))
		h.Set("Content-Length", strconv.Itoa(req.BodyBytes))
	case req.Method != http.MethodGet:
		body = []byte{'-'}
	}
	return test.Request{Method: req.Method, Url: "http://edge.test" + req.Path, Headers: h, Body: body}
}

// TestConformance: the plugin, through go-pdk's test harness, passes every
// case of the suite the harness can express; the others are listed with
// the reason (docs/kong.md repeats them: TestConformanceDocs).
func TestConformance(t *testing.T) {
	plan := planKongCases(t)
	for _, s := range plan.skipped {
		t.Logf("not run on the Kong plane: %s (%s)", s.name, s.gap.why)
	}
	t.Logf("Kong plane: %d of %d conformance cases run through go-pdk's test harness", len(plan.run), plan.total)
	if len(plan.run) < plan.total/2 {
		t.Errorf("only %d of %d cases run on the Kong plane", len(plan.run), plan.total)
	}
	conformance.Run(t, kongPlane{}, conformance.Options{Only: func(c conformance.Case) bool { return plan.run[c.Name] }})
}

// casePlan is which conformance cases the Kong plane runs, and why it
// skips the others.
type casePlan struct {
	total   int
	run     map[string]bool
	skipped []skippedCase // in the suite's order
}

type skippedCase struct {
	name string
	gap  *harnessGap
}

func planKongCases(t *testing.T) casePlan {
	t.Helper()
	cases, err := conformance.Load(conformance.Dir())
	if err != nil {
		t.Fatal(err)
	}
	plan := casePlan{total: len(cases), run: map[string]bool{}}
	for _, c := range cases {
		p, err := policyfile.Load(conformance.Dir() + "/policies/" + c.Policy)
		if err != nil {
			t.Fatal(err)
		}
		if gap := harnessCannot(c, p); gap != nil {
			plan.skipped = append(plan.skipped, skippedCase{c.Name, gap})
			continue
		}
		plan.run[c.Name] = true
	}
	return plan
}

// harnessGap is something go-pdk's test harness cannot express, and why.
type harnessGap struct{ why string }

// What the harness cannot express. docs/kong.md lists them with the cases
// they keep off the Kong plane (TestConformanceDocs).
var (
	gapRawHeader = &harnessGap{"a CR LF inside a header value ends the header on the wire, so NGINX hands Kong two " +
		"well-formed headers; the harness would hand the plugin one value holding CR LF, a request no client can send"}
	gapMethod = &harnessGap{"the harness takes GET, POST, PUT and PATCH only; these cases send OPTIONS (CORS " +
		"preflights) or DELETE"}
	gapGetBody     = &harnessGap{"the harness refuses a GET with a body"}
	gapEscapedPath = &harnessGap{"the harness answers `kong.request.get_path_with_query` with the decoded path " +
		"(`url.URL.Path`) where Kong returns the raw `request_uri`, so percent-escapes would reach the plugin " +
		"already decoded and the case would test the harness's decoding instead of the engine's"}
	gapKongAnswers = &harnessGap{"the harness's `kong.response.get_source` always says `service`: it cannot be " +
		"Kong answering 502 or 504 itself because the upstream was down or too slow (`TestOutcome` checks the Log " +
		"phase's mapping of those)"}
	gapPeers = &harnessGap{"their requests come from several client addresses; the harness answers " +
		"`kong.client.get_ip` with " + harnessPeer + " for every request"}
	gapTrustedPeer = &harnessGap{"their requests come from an address the policy trusts as a proxy, and the " +
		"harness's one address, " + harnessPeer + ", is not trusted (`TestClientAddress` checks the plugin's " +
		"reading of `get_ip` and `X-Forwarded-For` with a policy trusting " + harnessPeer + ")"}
)

// harnessCannot says why go-pdk's test harness cannot express case c of
// policy p, or nil when it can.
func harnessCannot(c conformance.Case, p *policy.Policy) *harnessGap {
	for _, tag := range c.Tags {
		if tag == "raw-header-bytes" {
			return gapRawHeader
		}
	}
	peers := map[string]bool{}
	for _, s := range c.Steps {
		r := s.Request
		method := r.Method
		if method == "" {
			method = http.MethodGet
		}
		switch {
		case method != http.MethodGet && method != http.MethodPost && method != http.MethodPut && method != http.MethodPatch:
			return gapMethod
		case method == http.MethodGet && r.BodyBytes > 0:
			return gapGetBody
		case strings.Contains(r.Path, "%"):
			return gapEscapedPath
		case s.Upstream.Down || s.Upstream.Delay > 0:
			return gapKongAnswers
		}
		peer := r.Peer
		if peer == "" {
			peer = "127.0.0.1"
		}
		peers[peer] = true
	}
	if len(peers) > 1 {
		return gapPeers
	}
	for peer := range peers {
		if trusted(p, peer) != trusted(p, harnessPeer) {
			return gapTrustedPeer
		}
	}
	return nil
}

func trusted(p *policy.Policy, addr string) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	for _, pfx := range p.Spec.ClientIP.TrustedProxies {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

var updateDocs = flag.Bool("update-docs", false, "rewrite the Kong plane's list of conformance cases in docs/kong.md")

// Markers around the part of docs/kong.md that TestConformanceDocs checks.
const (
	docsCasesBegin = "<!-- begin: TestConformanceDocs checks this list; go test ./plugins/kong -run TestConformanceDocs -update-docs rewrites it -->\n"
	docsCasesEnd   = "<!-- end -->\n"
)

// TestConformanceDocs: docs/kong.md states how many cases the Kong plane
// runs, and lists exactly the cases it does not run with the reason, as
// TestConformance decides them. With -update-docs it rewrites that part.
func TestConformanceDocs(t *testing.T) {
	plan := planKongCases(t)
	path := filepath.Join("..", "..", "docs", "kong.md")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	begin, end := strings.Index(doc, docsCasesBegin), strings.Index(doc, docsCasesEnd)
	if begin < 0 || end < begin {
		t.Fatalf("%s has no %q … %q section", path, docsCasesBegin, docsCasesEnd)
	}
	want := plan.markdown()
	got := doc[begin+len(docsCasesBegin) : end]
	if got == want {
		return
	}
	if *updateDocs {
		doc = doc[:begin+len(docsCasesBegin)] + want + doc[end:]
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s does not say what TestConformance runs; rerun with -update-docs. It says:\n%s\nwant:\n%s", path, got, want)
}

// markdown is the plan as docs/kong.md states it: the count, then the cases
// not run, grouped by reason in the order the suite first meets them.
func (p casePlan) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "It runs **%d of the %d cases**; the %d it cannot express, and why:\n\n", len(p.run), p.total, len(p.skipped))
	b.WriteString("| reason | cases not run |\n| --- | --- |\n")
	var gaps []*harnessGap
	byGap := map[*harnessGap][]string{}
	for _, s := range p.skipped {
		if byGap[s.gap] == nil {
			gaps = append(gaps, s.gap)
		}
		byGap[s.gap] = append(byGap[s.gap], strings.ReplaceAll(s.name, "|", `\|`))
	}
	for _, g := range gaps {
		fmt.Fprintf(&b, "| %s | %s |\n", g.why, strings.Join(byGap[g], "; "))
	}
	return b.String()
}
