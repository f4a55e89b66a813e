package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/contentguard/contentguard/internal/redistest"
)

// upRun is one `contentguard up` running in-process on free ports.
type upRun struct {
	edge, token, curl string
	output            []string
	cancel            context.CancelFunc
	exit              chan int
}

func startUp(t *testing.T, state string) *upRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	u := &upRun{cancel: cancel, exit: make(chan int, 1)}
	go func() {
		code := run(ctx, []string{"up", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--backend", "127.0.0.1:0", "--state", state}, pw, io.Discard)
		pw.Close()
		u.exit <- code
	}()
	t.Cleanup(func() { u.stop(t) })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, pr)
	}()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("up ended early:\n%s", strings.Join(u.output, "\n"))
			}
			u.output = append(u.output, line)
			switch {
			case strings.HasPrefix(line, "  edge "):
				u.edge = strings.Fields(line)[1]
			case strings.HasPrefix(line, "TOKEN="):
				u.token = strings.TrimPrefix(line, "TOKEN=")
			case strings.HasPrefix(line, "curl ") && strings.Contains(line, "/analyze"):
				u.curl = line
			case strings.HasPrefix(line, "Press Ctrl-C"):
				go func() {
					for range lines {
					}
				}()
				return u
			}
		case <-timeout:
			t.Fatalf("up did not print its banner:\n%s", strings.Join(u.output, "\n"))
		}
	}
}

func (u *upRun) stop(t *testing.T) {
	if u.cancel == nil {
		return
	}
	u.cancel()
	u.cancel = nil
	select {
	case code := <-u.exit:
		if code != 0 {
			t.Errorf("up exited %d", code)
		}
	case <-time.After(20 * time.Second):
		t.Error("up did not stop")
	}
}

// curlRequest turns the printed curl line into a request: the URL, -X, -H
// and -d, with $TOKEN expanded as the shell would.
func curlRequest(t *testing.T, line, token string) *http.Request {
	t.Helper()
	words := regexp.MustCompile(`'[^']*'|"[^"]*"|\S+`).FindAllString(line, -1)
	unquote := func(s string) string {
		if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') {
			inner := s[1 : len(s)-1]
			if s[0] == '"' {
				inner = strings.ReplaceAll(inner, "$TOKEN", token)
			}
			return inner
		}
		return s
	}
	method, target, body := "GET", "", ""
	header := http.Header{}
	for i := 1; i < len(words); i++ {
		switch words[i] {
		case "-X":
			i++
			method = words[i]
		case "-H":
			i++
			k, v, _ := strings.Cut(unquote(words[i]), ":")
			header.Add(k, strings.TrimSpace(v))
		case "-d":
			i++
			body = unquote(words[i])
		case "-sS":
		default:
			target = unquote(words[i])
		}
	}
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		t.Fatalf("printed curl %q: %v", line, err)
	}
	req.Header = header
	return req
}

func do(t *testing.T, req *http.Request) (int, http.Header, []byte) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func tokenRequest(edge string, form url.Values) *http.Request {
	r, _ := http.NewRequest("POST", edge+"/api/v1/auth/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// TestUpOnAFreshMachine: `up` with an empty state directory writes keys,
// prints a token and a curl that analyses a text through the edge, serves
// the token endpoint for the demo user, and limits password guessing.
func TestUpOnAFreshMachine(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	state := filepath.Join(t.TempDir(), "state")
	u := startUp(t, state)
	for _, f := range []string{"keys/signing.pem", "keys/jwks.json"} {
		if _, err := os.Stat(filepath.Join(state, f)); err != nil {
			t.Errorf("state: %v", err)
		}
	}
	if u.edge == "" || u.token == "" || u.curl == "" {
		t.Fatalf("banner lacks the edge URL, token or curl:\n%s", strings.Join(u.output, "\n"))
	}
	status, h, body := do(t, curlRequest(t, u.curl, u.token))
	var env struct {
		Success bool `json:"success"`
		Data    struct {
			WordCount int `json:"word_count"`
		} `json:"data"`
	}
	if status != 200 || json.Unmarshal(body, &env) != nil || !env.Success || env.Data.WordCount != 9 {
		t.Fatalf("printed curl: %d %s", status, body)
	}
	if h.Get("X-Request-ID") == "" || h.Get("RateLimit-Remaining") == "" {
		t.Errorf("the edge's headers are missing: %v", h)
	}
	// Without the token the edge refuses.
	noToken := curlRequest(t, u.curl, u.token)
	noToken.Header.Del("Authorization")
	if status, _, _ := do(t, noToken); status != 401 {
		t.Errorf("without a token: %d", status)
	}

	// The token endpoint works for the demo user, and a refresh rotates.
	status, _, body = do(t, tokenRequest(u.edge, url.Values{"grant_type": {"password"}, "username": {demoUser}, "password": {demoPassword}}))
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if status != 200 || json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("password grant: %d %s", status, body)
	}
	if status, _, body := do(t, tokenRequest(u.edge, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})); status != 200 {
		t.Fatalf("refresh: %d %s", status, body)
	}
	// Guessing passwords runs into the token route's rate limit (10 a
	// minute per address, refilling one every 6s): a 429 with Retry-After
	// comes long before 25 attempts, however slow this machine is.
	limited := false
	for i := 0; i < 25 && !limited; i++ {
		status, h, body := do(t, tokenRequest(u.edge, url.Values{"grant_type": {"password"}, "username": {demoUser}, "password": {"guess"}}))
		switch {
		case status == 429 && h.Get("Retry-After") != "":
			limited = true
		case status != 400:
			t.Fatalf("guess %d: %d %s", i+1, status, body)
		}
	}
	if !limited {
		t.Fatal("25 wrong passwords in a row were all answered: the token route is not rate limited")
	}

	// A second run keeps the keys: the first run's token still works.
	u.stop(t)
	again := startUp(t, state)
	if status, _, body := do(t, curlRequest(t, again.curl, u.token)); status != 200 {
		t.Fatalf("old token after restart: %d %s", status, body)
	}
}

// TestUpWithRedis: with REDIS_URL every store is Redis.
func TestUpWithRedis(t *testing.T) {
	addr := redistest.Start(t)
	t.Setenv("REDIS_URL", "redis://"+addr+"/0")
	u := startUp(t, filepath.Join(t.TempDir(), "state"))
	if !strings.Contains(strings.Join(u.output, "\n"), "stores: redis") {
		t.Errorf("banner does not say redis:\n%s", strings.Join(u.output, "\n"))
	}
	if status, _, body := do(t, curlRequest(t, u.curl, u.token)); status != 200 {
		t.Fatalf("printed curl: %d %s", status, body)
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	keys, err := c.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(keys, " ")
	// The banner's token came with a refresh token (issuer store), the
	// curl spent rate-limit budget, and the analysis was cached.
	for _, want := range []string{"contentguard:rt:", "contentguard:cache:"} {
		if !strings.Contains(all, want) {
			t.Errorf("no %s* key in Redis: %v", want, keys)
		}
	}
	if len(keys) < 3 {
		t.Errorf("want rate-limit keys too: %v", keys)
	}
}
