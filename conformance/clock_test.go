package conformance

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/contentguard/contentguard/internal/clocktest"
)

// recordingPlane answers 200 to everything and records, per request, its
// clock's time and the expiry of the token it carried.
type recordingPlane struct{ inst *recordingInstance }

type recordingInstance struct {
	*clocktest.Clock
	seen []time.Time
	exps []time.Time
}

func (p recordingPlane) Start(testing.TB, string) Instance { return p.inst }

func (in *recordingInstance) Close() {}

func (in *recordingInstance) Do(t testing.TB, req SentRequest, _ Upstream) Response {
	in.seen = append(in.seen, in.Now())
	if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok {
		var claims jwt.RegisteredClaims
		if _, _, err := jwt.NewParser().ParseUnverified(tok, &claims); err != nil {
			t.Fatal(err)
		}
		in.exps = append(in.exps, claims.ExpiresAt.Time)
	}
	return Response{Status: 200, Header: http.Header{}, Forwarded: true}
}

// TestClockedInstancesDoNotSleep: for a Clocked instance a step's sleep
// advances its clock, at once, by exactly that much, and tokens are minted
// at its time: a case's timing no longer depends on the machine's speed.
func TestClockedInstancesDoNotSleep(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	inst := &recordingInstance{Clock: clocktest.New(start)}
	m, err := NewMinter(filepath.Join(Dir(), "testdata", "keys"))
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	c := Case{Name: "an hour passes", Policy: "standard.yaml", Steps: []Step{
		{Request: Request{Path: "/a", Token: &Token{}}, Expect: Expect{Status: 200, Forwarded: &yes}},
		{Sleep: time.Hour, Request: Request{Path: "/b", Token: &Token{}}, Expect: Expect{Status: 200, Forwarded: &yes}},
	}}
	began := time.Now()
	RunCase(t, recordingPlane{inst}, m, Dir(), c)
	if took := time.Since(began); took > time.Minute {
		t.Fatalf("the case took %v: it slept instead of advancing the clock", took)
	}
	if len(inst.seen) != 2 || !inst.seen[0].Equal(start) || !inst.seen[1].Equal(start.Add(time.Hour)) {
		t.Fatalf("requests saw the clock at %v, want %v then an hour later", inst.seen, start)
	}
	// Tokens expire 10 minutes after the instance's time, not the machine's.
	if len(inst.exps) != 2 || !inst.exps[0].Equal(start.Add(10*time.Minute)) || !inst.exps[1].Equal(start.Add(time.Hour+10*time.Minute)) {
		t.Fatalf("token expiries %v, want 10m after each request's clock", inst.exps)
	}
}
