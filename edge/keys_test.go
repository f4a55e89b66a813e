package edge_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/edge/breaker"
	"github.com/contentguard/contentguard/policy"
)

// keysSeen is an Observer that also implements edge.KeysObserver.
type keysSeen struct {
	mu      sync.Mutex
	fetches []string
}

func (*keysSeen) Decided(edge.Decision)                               {}
func (*keysSeen) Upstream(edge.Decision, edge.Outcome)                {}
func (*keysSeen) BreakerChanged(string, breaker.State, breaker.State) {}
func (*keysSeen) RateLimitFallback(error)                             {}

func (k *keysSeen) KeysFetched(provider, url string, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	result := "ok"
	if err != nil {
		result = err.Error()
	}
	k.fetches = append(k.fetches, provider+" "+url+" "+result)
}

// TestKeysObserverAndAwaitingKeys: a JWKS fetch that fails reaches an
// Observer that implements KeysObserver, with the URL and the error; the
// provider is awaiting keys (the data plane is not ready) unless the policy
// lets it start without them.
func TestKeysObserverAndAwaitingKeys(t *testing.T) {
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer idp.Close()
	for _, optional := range []bool{false, true} {
		doc := `{"apiVersion":"contentguard.dev/v1","kind":"EdgePolicy","metadata":{"name":"t"},
			"spec":{"upstream":{"url":"http://127.0.0.1:1"},
			"auth":{"jwt":{"providers":[{"name":"idp","issuer":"https://idp","audiences":["api"],"algorithms":["ES256"],
				"jwks":{"url":"` + idp.URL + `/jwks","readyWithoutKeys":` + map[bool]string{false: "false", true: "true"}[optional] + `}}]}},
			"routes":[{"name":"all","match":{"pathPrefix":"/"},"auth":{"anyOf":["jwt"]}}]}}`
		p, err := policy.DecodeJSON([]byte(doc), "t.json")
		if err != nil {
			t.Fatal(err)
		}
		obs := &keysSeen{}
		e, err := edge.New(context.Background(), p, edge.Options{Observer: obs})
		if err != nil {
			t.Fatal(err)
		}
		awaiting := e.AwaitingKeys()
		e.Close()
		obs.mu.Lock()
		fetches := obs.fetches
		obs.mu.Unlock()
		if len(fetches) != 1 || !strings.HasPrefix(fetches[0], "idp "+idp.URL+"/jwks ") || !strings.Contains(fetches[0], "status 503") {
			t.Fatalf("KeysFetched calls: %q", fetches)
		}
		want := "idp"
		if optional {
			want = ""
		}
		if strings.Join(awaiting, ",") != want {
			t.Fatalf("readyWithoutKeys %v: AwaitingKeys = %v, want %q", optional, awaiting, want)
		}
	}
}
