package lint

import (
	"strings"
	"testing"

	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/policy/policyfile"
)

func route(name, exact, prefix string, methods ...string) policy.Route {
	return policy.Route{Name: name, Match: policy.Match{Path: exact, PathPrefix: prefix, Methods: methods}, Auth: policy.RouteAuth{None: true}}
}

// shadowed lists the names of the routes Check finds never reached.
func shadowed(routes ...policy.Route) []string {
	var out []string
	for _, f := range Check(&policy.Policy{Spec: policy.Spec{Routes: routes}}, nil) {
		if f.Code == "shadowed-route" {
			out = append(out, strings.Split(f.Message, `"`)[1])
		}
	}
	return out
}

func TestShadowedRoutes(t *testing.T) {
	for _, c := range []struct {
		name   string
		routes []policy.Route
		want   string
	}{
		{"prefix covers a longer prefix", []policy.Route{route("api", "", "/api/"), route("v1", "", "/api/v1/")}, "v1"},
		{"prefix covers an exact path", []policy.Route{route("api", "", "/api/"), route("x", "/api/x", "")}, "x"},
		{"any method covers GET", []policy.Route{route("all", "", "/"), route("get", "/a", "", "GET")}, "get"},
		{"GET does not cover any method", []policy.Route{route("get", "", "/", "GET"), route("all", "/a", "")}, ""},
		{"two earlier routes cover two methods", []policy.Route{route("g", "", "/", "GET"), route("p", "", "/a", "POST"), route("gp", "/a/b", "", "GET", "POST")}, "gp"},
		{"one method left uncovered", []policy.Route{route("g", "", "/", "GET"), route("gp", "/a/b", "", "GET", "POST")}, ""},
		{"exact covers only itself", []policy.Route{route("a", "/a", ""), route("ab", "", "/a")}, ""},
		{"same exact path", []policy.Route{route("a", "/a", "", "GET"), route("a2", "/a", "", "GET")}, "a2"},
		{"a narrower route first is fine", []policy.Route{route("v1", "", "/api/v1/"), route("api", "", "/api/")}, ""},
		{"prefix without trailing slash", []policy.Route{route("api", "", "/api"), route("apix", "", "/apix/")}, "apix"},
		{"template path is covered by its literal part", []policy.Route{route("jobs", "", "/jobs/"), route("job", "/jobs/{id}", "")}, "job"},
		{"template path covers nothing", []policy.Route{route("job", "/jobs/{id}", ""), route("x", "/jobs/x", "")}, ""},
	} {
		got := strings.Join(shadowed(c.routes...), ",")
		if got != c.want {
			t.Errorf("%s: shadowed %q, want %q", c.name, got, c.want)
		}
	}
}

// TestShadowedRouteWording: the warning names the routes that shadow one,
// in a sentence that reads ("matches" for one route, "match" for two).
func TestShadowedRouteWording(t *testing.T) {
	for _, c := range []struct {
		routes    []policy.Route
		msg, hint string
	}{
		{[]policy.Route{route("api", "", "/api/"), route("v1", "", "/api/v1/")},
			`route "v1" is never reached: "api" (line 0) matches every request it would`,
			`routes match in order, the first wins: move this route above "api" (line 0), or narrow that route`},
		{[]policy.Route{route("g", "", "/", "GET"), route("p", "", "/a", "POST"), route("gp", "/a/b", "", "GET", "POST")},
			`route "gp" is never reached: "g" (line 0) and "p" (line 0) match every request it would`,
			`routes match in order, the first wins: move this route above "g" (line 0) and "p" (line 0), or narrow those routes`},
	} {
		var got []string
		for _, f := range Check(&policy.Policy{Spec: policy.Spec{Routes: c.routes}}, nil) {
			if f.Code == "shadowed-route" {
				got = append(got, f.Message, f.Hint)
			}
		}
		if len(got) != 2 || got[0] != c.msg || got[1] != c.hint {
			t.Errorf("got %q\nwant %q, %q", got, c.msg, c.hint)
		}
	}
}

func TestHints(t *testing.T) {
	for msg, want := range map[string]string{
		`unknown key "pathprefix" (known: path, pathPrefix, methods)`:  `did you mean "pathPrefix"?`,
		`unknown key "ratelimt" (known: name, match, auth, rateLimit)`: `did you mean "rateLimit"?`,
		`unknown key "zzz" (known: name, match, auth, rateLimit)`:      "",
		"did not find expected key":                                    yamlHints[1].hint,
		"must be a positive number":                                    "",
	} {
		if got := errorHint(msg); got != want {
			t.Errorf("errorHint(%q) = %q, want %q", msg, got, want)
		}
	}
	if got := nearest("PSOT", knownMethods); got != "POST" {
		t.Errorf("nearest(PSOT) = %q", got)
	}
}

func TestLocate(t *testing.T) {
	root := &policy.Node{Kind: policy.Mapping, Line: 1, Column: 1, Pairs: []policy.Pair{
		{Key: &policy.Node{Value: "spec"}, Value: &policy.Node{Kind: policy.Mapping, Line: 2, Column: 3, Pairs: []policy.Pair{
			{Key: &policy.Node{Value: "routes"}, Value: &policy.Node{Kind: policy.Sequence, Line: 3, Column: 5, Items: []*policy.Node{
				{Kind: policy.Mapping, Line: 4, Column: 7}, {Kind: policy.Mapping, Line: 9, Column: 7},
			}}},
		}}},
	}}
	for path, want := range map[string][2]int{
		"spec.routes[1]":            {9, 7},
		"spec.routes[1].match.path": {9, 7}, // defaulted: the nearest ancestor
		"spec.routes[5]":            {3, 5},
		"spec":                      {2, 3},
		"":                          {1, 1},
	} {
		if l, c := Locate(root, path); l != want[0] || c != want[1] {
			t.Errorf("Locate(%q) = %d:%d, want %d:%d", path, l, c, want[0], want[1])
		}
	}
}

// The embedded default policy, what `up` runs, has nothing to warn about.
func TestDefaultPolicyHasNoWarnings(t *testing.T) {
	root, err := policyfile.ParseYAML(policyfile.DefaultYAML())
	if err != nil {
		t.Fatal(err)
	}
	p, err := policyfile.Default(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range Check(p, root) {
		t.Errorf("%s (hint: %s)", f, f.Hint)
	}
}

// TestMatchSwitches: routes compare as the engine matches them. With
// spec.paths.caseInsensitive, /API/ takes /api/v1/ and /Admin takes /admin
// (the warning says why); without it they are different paths. The token
// endpoint's routes are found the same way, and a token path with a ';'
// parameter is refused unless spec.paths.allowParameters admits it.
func TestMatchSwitches(t *testing.T) {
	check := func(paths policy.Paths, issuer *policy.TokenIssuer, routes ...policy.Route) map[string][]string {
		found := map[string][]string{}
		for _, f := range Check(&policy.Policy{Spec: policy.Spec{Paths: paths, TokenIssuer: issuer, Routes: routes}}, nil) {
			found[f.Code] = append(found[f.Code], f.Message+" | "+f.Hint)
		}
		return found
	}
	fold := policy.Paths{CaseInsensitive: true}
	for _, c := range []struct {
		name   string
		routes []policy.Route
	}{
		{"a prefix in another case", []policy.Route{route("api", "", "/API/"), route("v1", "", "/api/v1/")}},
		{"an exact path in another case", []policy.Route{route("a", "/Admin", ""), route("b", "/admin", "")}},
	} {
		if got := check(policy.Paths{}, nil, c.routes...)["shadowed-route"]; len(got) != 0 {
			t.Errorf("%s, case-sensitive: %q", c.name, got)
		}
		got := check(fold, nil, c.routes...)["shadowed-route"]
		if len(got) != 1 || !strings.Contains(got[0], "spec.paths.caseInsensitive") {
			t.Errorf("%s, case-insensitive: %q", c.name, got)
		}
	}
	// Shadowed in any case: no word about case.
	if got := check(fold, nil, route("api", "", "/api/"), route("v1", "", "/api/v1/"))["shadowed-route"]; len(got) != 1 || strings.Contains(got[0], "caseInsensitive") {
		t.Errorf("shadowed without regard to case: %q", got)
	}

	issuer := &policy.TokenIssuer{Path: "/api/v1/auth/token", Issuer: "https://i", Audience: "a"}
	upper := []policy.Route{route("token", "/API/V1/AUTH/TOKEN", "", "POST"), route("revoke", "/API/V1/AUTH/REVOKE", "", "POST"),
		route("keys", "", "/.well-known/", "GET")}
	if got := check(policy.Paths{}, issuer, upper...)["token-endpoint-unrouted"]; len(got) != 2 {
		t.Errorf("case-sensitive, the token and revoke routes are other paths: %q", got)
	}
	if got := check(fold, issuer, upper...)["token-endpoint-unrouted"]; len(got) != 0 {
		t.Errorf("case-insensitive, the token and revoke routes match: %q", got)
	}

	params := &policy.TokenIssuer{Path: "/api/v1/auth;v=1/token", Issuer: "https://i", Audience: "a"}
	lower := []policy.Route{route("auth", "", "/api/v1/auth/", "POST"), route("keys", "", "/.well-known/", "GET")}
	if got := check(policy.Paths{}, params, lower...)["token-endpoint-refused"]; len(got) != 2 || !strings.Contains(got[0], "400 bad_path") {
		t.Errorf("a ';' in the token path without allowParameters: %q", got)
	}
	got := check(policy.Paths{AllowParameters: true}, params, lower...)
	if len(got["token-endpoint-refused"])+len(got["token-endpoint-unrouted"]) != 0 {
		t.Errorf("with allowParameters the path is matched without its parameter: %q", got)
	}
}
