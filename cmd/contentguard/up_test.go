package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/contentguard/contentguard/internal/buildinfo"
	"github.com/contentguard/contentguard/internal/polltest"
	"github.com/contentguard/contentguard/internal/redistest"
)

// upRun is one `contentguard up` running in-process on free ports.
type upRun struct {
	edge, admin, backend, token, refresh, curl string
	curls                                      []string // every command line of the banner (curl, or VAR=$(curl …)), in order
	output                                     []string
	cancel                                     context.CancelFunc
	exit                                       chan int
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
	// A liveness bound, not a speed check: under -race on a loaded CI
	// machine the first start (keys made, stores opened, four listeners)
	// has taken over 30 s.
	timeout := time.After(2 * time.Minute)
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
			case strings.HasPrefix(line, "  admin "):
				u.admin = strings.Fields(line)[1]
			case strings.HasPrefix(line, "  backend "):
				u.backend = strings.Fields(line)[1]
			case strings.HasPrefix(line, "TOKEN="):
				u.token = strings.TrimPrefix(line, "TOKEN=")
			case strings.HasPrefix(line, "REFRESH="):
				u.refresh = strings.TrimPrefix(line, "REFRESH=")
			case strings.HasPrefix(line, "curl "), bannerAssign.MatchString(line):
				u.curls = append(u.curls, line)
				if u.curl == "" && strings.Contains(line, "/analyze") {
					u.curl = line
				}
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
	// minute per address, refilling one every 6s). The guesses go at once,
	// as a guesser's would: the limiter decides each on arrival, before the
	// bcrypt comparison, so however slow bcrypt is on a loaded machine
	// (one after another, 25 guesses could take the 90s that refill 15),
	// at most the 10 left in the bucket plus a refill or two are answered.
	const guesses = 25
	statuses := make(chan [2]string, guesses)
	began := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < guesses; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 2 * time.Minute}
			resp, err := c.Do(tokenRequest(u.edge, url.Values{"grant_type": {"password"}, "username": {demoUser}, "password": {"guess"}}))
			if err != nil {
				statuses <- [2]string{"error", err.Error()}
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses <- [2]string{strconv.Itoa(resp.StatusCode), resp.Header.Get("Retry-After")}
		}()
	}
	wg.Wait()
	close(statuses)
	limited := 0
	for st := range statuses {
		switch {
		case st[0] == "429" && st[1] != "":
			limited++
		case st[0] != "400":
			t.Errorf("a wrong password: %s %s, want 400 (or 429 with Retry-After)", st[0], st[1])
		}
	}
	// Two of the ten went to the grants above; the bucket cannot have
	// refilled more than once per 6s while the guesses were in flight.
	budget := 8 + int(time.Since(began)/(6*time.Second)) + 1
	if answered := guesses - limited; limited == 0 || answered > budget {
		t.Fatalf("%d of %d guesses at once were answered, at most %d may be: the token route is not rate limited", answered, guesses, budget)
	}

	// A second run keeps the keys: it publishes the key that signed the
	// first run's token. (Its issuer is the second run's address, another
	// free port here, so the old token itself is not accepted.)
	u.stop(t)
	again := startUp(t, state)
	header, err := base64.RawURLEncoding.DecodeString(strings.Split(u.token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var kid struct{ Kid string }
	_ = json.Unmarshal(header, &kid)
	req, _ := http.NewRequest("GET", again.edge+"/.well-known/jwks.json", nil)
	if status, _, body := do(t, req); status != 200 || kid.Kid == "" || !strings.Contains(string(body), `"`+kid.Kid+`"`) {
		t.Fatalf("after a restart the JWKS %d %s lacks the first key %q", status, body, kid.Kid)
	}
	if status, _, body := do(t, curlRequest(t, again.curl, again.token)); status != 200 {
		t.Fatalf("after a restart: %d %s", status, body)
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
	// curl spent rate-limit budget, the analysis was cached, and the job
	// went through asynq.
	checkBannerCommands(t, u)
	keys, err = c.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	all = strings.Join(keys, " ")
	for _, want := range []string{"contentguard:rt:", "contentguard:cache:", "asynq:"} {
		if !strings.Contains(all, want) {
			t.Errorf("no %s* key in Redis: %v", want, keys)
		}
	}
	if len(keys) < 3 {
		t.Errorf("want rate-limit keys too: %v", keys)
	}
}

// sh runs script with bash -euo pipefail in dir, with env added to this
// process's environment, and returns its standard output. curl is the real
// curl with --fail-with-body, so an HTTP error fails the script.
func sh(t *testing.T, dir string, env []string, script string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("curl is required (apt-get install curl; .ci/run installs it): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c",
		"curl() { command curl --fail-with-body \"$@\"; }\n"+script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%w\nscript:\n%s\nstdout:\n%s\nstderr:\n%s", err, script, out.String(), errb.String())
	}
	return out.String(), err
}

// TestUpBannerCommandsWork runs every command the banner prints, as
// printed and in order, with the real curl: analyse with the token and with
// the API key, register a webhook, submit a job and poll it until it
// completes, refresh the token and get a new one; the webhook, where the
// banner says to listen (here a free port in its place), hears the job
// finish. Jobs and webhooks used to answer 404 (not mounted); the poll used
// to name a placeholder, JOB_ID, that a newcomer pasting it got a 404 for;
// the webhook was registered after the job, for batches only, so nothing
// the banner ran ever reached it.
func TestUpBannerCommandsWork(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	u := startUp(t, filepath.Join(t.TempDir(), "state"))
	checkBannerCommands(t, u)
}

// bannerAssign is a banner line that keeps a command's answer in a shell
// variable for the lines after it: VAR=$(curl …).
var bannerAssign = regexp.MustCompile(`^([A-Z_]+)=\$\(curl `)

func checkBannerCommands(t *testing.T, u *upRun) {
	t.Helper()
	env := []string{"TOKEN=" + u.token, "REFRESH=" + u.refresh}
	features := map[string]bool{}
	jobID := ""
	var mu sync.Mutex
	var heard []string // the events of webhook deliveries, with their bodies
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		heard = append(heard, r.Header.Get("X-Webhook-Event")+" "+string(b))
		mu.Unlock()
	}))
	defer hook.Close()
	for _, line := range u.curls {
		line = strings.ReplaceAll(line, "http://127.0.0.1:9000/", hook.URL+"/")
		if m := bannerAssign.FindStringSubmatch(line); m != nil {
			// The variable lives on in the shell that pastes the banner.
			out, err := sh(t, t.TempDir(), env, line+"\nprintf %s \"$"+m[1]+"\"")
			if err != nil {
				t.Fatalf("printed command failed: %v", err)
			}
			env = append(env, m[1]+"="+out)
			if strings.Contains(line, "-X POST "+u.edge+"/api/v1/jobs ") {
				jobID = out
				features["job"] = strings.HasPrefix(jobID, "job_")
			}
			continue
		}
		out, err := sh(t, t.TempDir(), env, line)
		if err != nil {
			t.Fatalf("printed command failed: %v", err)
		}
		var answer struct {
			Success bool            `json:"success"`
			Data    json.RawMessage `json:"data"`
			Access  string          `json:"access_token"`
			Refresh string          `json:"refresh_token"`
		}
		if err := json.Unmarshal([]byte(out), &answer); err != nil {
			t.Fatalf("%s: %v: %s", line, err, out)
		}
		switch {
		case strings.Contains(line, "/analyze"):
			features["analyze"] = answer.Success
		case strings.Contains(line, "/api/v1/jobs/"):
			// Poll as a client would, until the job is done.
			status := ""
			if !polltest.Until(30*time.Second, func() bool {
				out, err := sh(t, t.TempDir(), env, line)
				if err != nil {
					t.Fatal(err)
				}
				var got struct {
					Data struct{ Status string } `json:"data"`
				}
				_ = json.Unmarshal([]byte(out), &got)
				status = got.Data.Status
				return status == "completed" || status == "failed"
			}) || status != "completed" {
				t.Fatalf("job %s: status %q, want completed", jobID, status)
			}
			features["poll"] = true
		case strings.Contains(line, "/webhooks/register"):
			features["webhook"] = answer.Success
		case strings.Contains(line, "grant_type=refresh_token"):
			features["refresh"] = answer.Access != "" && answer.Refresh != "" && answer.Refresh != u.refresh
		case strings.Contains(line, "grant_type=password"):
			features["password"] = answer.Access != ""
		}
	}
	if features["webhook"] && jobID != "" {
		features["webhook"] = polltest.Until(30*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, h := range heard {
				if strings.HasPrefix(h, "analysis_completed ") && strings.Contains(h, jobID) {
					return true
				}
			}
			return false
		})
		if !features["webhook"] {
			mu.Lock()
			t.Errorf("the banner's webhook did not hear its job %s finish; heard %q", jobID, heard)
			mu.Unlock()
		}
	}
	for _, f := range []string{"analyze", "job", "poll", "webhook", "refresh", "password"} {
		if !features[f] {
			t.Errorf("the banner's %s command is missing or did not work (%v):\n%s", f, features, strings.Join(u.output, "\n"))
		}
	}
	if !strings.Contains(strings.Join(u.output, "\n"), demoAPIKey) {
		t.Errorf("the banner does not print the demo API key")
	}
}

// TestUpAdvertisesWhereItListens: with ports other than the defaults, every
// URL up advertises — the banner's, the token endpoint's discovery
// document, the tokens' issuer — is the edge's real address (the discovery
// document used to say :8080), and the health endpoints report the
// binary's version.
func TestUpAdvertisesWhereItListens(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	u := startUp(t, filepath.Join(t.TempDir(), "state"))
	if strings.Contains(strings.Join(u.output, "\n"), ":8080") {
		t.Errorf("the banner names :8080, where nothing listens:\n%s", strings.Join(u.output, "\n"))
	}
	req, _ := http.NewRequest("GET", u.edge+"/.well-known/openid-configuration", nil)
	status, _, body := do(t, req)
	var doc map[string]any
	if status != 200 || json.Unmarshal(body, &doc) != nil {
		t.Fatalf("discovery: %d %s", status, body)
	}
	for key, want := range map[string]string{
		"issuer": u.edge, "token_endpoint": u.edge + "/api/v1/auth/token",
		"jwks_uri": u.edge + "/.well-known/jwks.json", "revocation_endpoint": u.edge + "/api/v1/auth/revoke",
	} {
		if doc[key] != want {
			t.Errorf("discovery %s = %v, want %s", key, doc[key], want)
		}
	}
	claims, err := jwtClaims(u.token)
	if err != nil || claims["iss"] != u.edge {
		t.Errorf("token iss = %v (%v), want %s", claims["iss"], err, u.edge)
	}
	for _, url := range []string{u.admin + "/healthz", u.backend + "/health"} {
		req, _ := http.NewRequest("GET", url, nil)
		status, _, body := do(t, req)
		var h struct {
			Version string `json:"version"`
			Data    struct {
				Version string `json:"version"`
			} `json:"data"`
		}
		if status != 200 || json.Unmarshal(body, &h) != nil || h.Version+h.Data.Version != buildinfo.Version() {
			t.Errorf("%s: %d %s, want version %q", url, status, body, buildinfo.Version())
		}
	}
}

// jwtClaims decodes a JWT's payload without verifying it.
func jwtClaims(token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

// TestUpNamesTheFlagOfABusyPort: with one of its ports taken (8080 often
// is), up says which listener could not bind and which flag moves it,
// instead of a bare "listen ADDR: listen tcp ADDR: ... in use".
func TestUpNamesTheFlagOfABusyPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	state := filepath.Join(t.TempDir(), "state")
	for _, c := range []struct{ flag, what string }{{"listen", "edge"}, {"backend", "backend"}, {"admin", "admin"}} {
		args := []string{"up", "--state", state, "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:0", "--admin", "127.0.0.1:0"}
		for i := range args {
			if args[i] == "--"+c.flag {
				args[i+1] = busy.Addr().String()
			}
		}
		code, _, errs := runCLI(t, args...)
		head, tail := fmt.Sprintf("contentguard up: %s: listen tcp %s: ", c.what, busy.Addr()), fmt.Sprintf(" (--%s chooses another address)", c.flag)
		if got := strings.TrimSpace(errs); code != 1 || !strings.HasPrefix(got, head) || !strings.HasSuffix(got, tail) {
			t.Errorf("%s busy: exit %d, stderr %q, want %q…%q", c.what, code, errs, head, tail)
		}
	}
}

// TestUpSaysWhenRedisIsNotThere: with REDIS_URL naming a Redis that does
// not answer, up says so first and how to do without, instead of seconds of
// go-redis dial errors and then the job queue's.
func TestUpSaysWhenRedisIsNotThere(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	t.Setenv("REDIS_URL", "redis://"+addr+"/0")
	code, _, errs := runCLI(t, "up", "--state", filepath.Join(t.TempDir(), "state"),
		"--listen", "127.0.0.1:0", "--backend", "127.0.0.1:0", "--admin", "127.0.0.1:0")
	if code != 1 || !strings.HasPrefix(errs, "contentguard up: REDIS_URL: Redis does not answer: ") || !strings.Contains(errs, "unset REDIS_URL") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
}
