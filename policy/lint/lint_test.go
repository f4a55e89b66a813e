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
