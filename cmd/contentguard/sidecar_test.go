package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/contentguard/contentguard/internal/polltest"
	"github.com/contentguard/contentguard/internal/redistest"
	"github.com/contentguard/contentguard/internal/syncbuf"
)

// TestMain lets the test binary run as contentguard itself (CG_RUN_MAIN=1),
// so process-level behaviour — signals, exit codes — is tested for real.
func TestMain(m *testing.M) {
	if os.Getenv("CG_RUN_MAIN") == "1" {
		main()
		return
	}
	code := m.Run()
	if binaryDir != "" {
		_ = os.RemoveAll(binaryDir)
	}
	os.Exit(code)
}

// logField waits for the JSON log line whose msg is msg and returns its
// field: how tests learn the addresses a command bound ("127.0.0.1:0" on
// its command line), instead of guessing a free port another process may
// take first. An unspecified host (":0" binds every interface) becomes
// 127.0.0.1.
func logField(t *testing.T, logs *syncbuf.Buffer, msg, field string) string {
	t.Helper()
	var value string
	if !polltest.Until(30*time.Second, func() bool {
		for _, line := range strings.Split(logs.String(), "\n") {
			var entry map[string]any
			if json.Unmarshal([]byte(line), &entry) == nil && entry["msg"] == msg {
				value, _ = entry[field].(string)
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no %q log line with %s:\n%s", msg, field, logs.String())
	}
	if host, port, err := net.SplitHostPort(value); err == nil && (host == "" || host == "::" || host == "0.0.0.0") {
		value = net.JoinHostPort("127.0.0.1", port)
	}
	return value
}

func sidecarPolicy(name, upstream string) string {
	// Both names are equally long: the file keeps its size across edits.
	return fmt.Sprintf(`apiVersion: contentguard.dev/v1
kind: EdgePolicy
metadata: {name: %s}
spec:
  upstream: {url: %s, timeout: 5s}
  routes:
    - name: all
      match: {pathPrefix: /}
      auth: none
`, name, upstream)
}

// TestSidecarCommand runs `contentguard sidecar` as a process: it proxies,
// reloads a changed file by itself, reloads on SIGHUP (the file's size and
// mtime are kept, so the poller cannot be what noticed), and drains and
// exits 0 on SIGTERM.
func TestSidecarCommand(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "upstream "+r.URL.Path)
	}))
	defer up.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(file, []byte(sidecarPolicy("first-policy", up.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "sidecar", "--policy", file, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "CG_RUN_MAIN=1")
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listen, admin := logField(t, &stderr, "starting sidecar", "listen"), logField(t, &stderr, "starting sidecar", "admin")
	client := &http.Client{Timeout: 5 * time.Second}
	policyName := func() string {
		resp, err := client.Get("http://" + admin + "/admin/policy")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		var p struct{ Name string }
		_ = json.NewDecoder(resp.Body).Decode(&p)
		return p.Name
	}
	waitUntil(t, func() bool { return policyName() == "first-policy" })

	resp, err := client.Get("http://" + listen + "/a/../b")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "upstream /b" || resp.Header.Get("X-Request-ID") == "" {
		t.Fatalf("proxied: %d %q %v", resp.StatusCode, body, resp.Header)
	}

	// A real change, which the poller applies: from then on it holds this
	// file's modification time and size (waiting for it orders the test
	// after a poll, where a sleep would only hope to).
	if err := os.WriteFile(file, []byte(sidecarPolicy("other-policy", up.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return policyName() == "other-policy" })
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(sidecarPolicy("again-policy", up.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(file, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // a poll or two: they must not notice
	if n := policyName(); n != "other-policy" {
		t.Fatalf("the poller reloaded an unchanged-looking file: %q", n)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return policyName() == "again-policy" })

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
	}
	logs := stderr.String()
	for _, want := range []string{`"msg":"request"`, `"route":"all"`, `"msg":"policy reloaded"`, `"msg":"sidecar stopped"`} {
		if !strings.Contains(logs, want) {
			t.Fatalf("log lacks %s:\n%s", want, logs)
		}
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSidecarFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"sidecar"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--policy") {
		t.Fatalf("no policy: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := run(context.Background(), []string{"sidecar", "--policy", "x.yaml", "--listen", "127.0.0.1:1", "--admin", "127.0.0.1:1"}, &out, &errb); code != 2 {
		t.Fatalf("admin on the public port: %d", code)
	}
	errb.Reset()
	if code := run(context.Background(), []string{"sidecar", "--policy", filepath.Join(t.TempDir(), "missing.yaml")}, &out, &errb); code != 1 {
		t.Fatalf("missing policy file: %d", code)
	}
	out.Reset()
	if code := run(context.Background(), []string{"sidecar", "--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "--upstream") {
		t.Fatalf("help: %d %q", code, out.String())
	}
}

// TestAuthzServesThroughTheDrain: after SIGTERM, while /readyz says 503 and
// the drain delay runs, the NGINX auth_request endpoint and Envoy's
// ext_authz service still decide as before. They stopped at the signal:
// the gRPC server refused every Check (Envoy refuses the request), and the
// authz endpoint decided with an ended context and refused (403) what its
// Redis rate limit allows.
func TestAuthzServesThroughTheDrain(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	file := filepath.Join(t.TempDir(), "policy.yaml")
	doc := fmt.Sprintf(`apiVersion: contentguard.dev/v1
kind: EdgePolicy
metadata: {name: drain}
spec:
  upstream: {url: %s, timeout: 5s}
  rateLimit: {store: {type: redis, url: "redis://%s", onError: deny}}
  routes:
    - {name: all, match: {pathPrefix: /}, auth: none, rateLimit: {rate: 1000, per: 1m}}
`, up.URL, redistest.Start(t))
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "sidecar", "--policy", file, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--authz", "127.0.0.1:0", "--ext-authz", "127.0.0.1:0", "--drain-delay", "10s")
	cmd.Env = append(os.Environ(), "CG_RUN_MAIN=1")
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	admin := logField(t, &stderr, "starting sidecar", "admin")
	authzAddr := logField(t, &stderr, "serving the NGINX auth_request endpoint", "addr")
	extAddr := logField(t, &stderr, "serving Envoy ext_authz and access-log services", "addr")

	client := &http.Client{Timeout: 5 * time.Second}
	status := func(req *http.Request) int {
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	decide := func() int {
		req, _ := http.NewRequest("GET", "http://"+authzAddr+"/authz", nil)
		req.Header.Set("X-Original-Method", "GET")
		req.Header.Set("X-Original-URI", "/a")
		return status(req)
	}
	conn, err := grpc.NewClient(extAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := decide(); got != http.StatusOK {
		t.Fatalf("authz before the signal: %d, want 200\n%s", got, stderr.String())
	}
	if code, err := extAuthzCheck(conn, "/a"); code != http.StatusOK {
		t.Fatalf("ext_authz before the signal: %d (%v), want 200", code, err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	readyz := func() int {
		req, _ := http.NewRequest("GET", "http://"+admin+"/readyz", nil)
		return status(req)
	}
	waitUntil(t, func() bool { return readyz() == http.StatusServiceUnavailable })
	if got := decide(); got != http.StatusOK {
		t.Errorf("authz during the drain: %d, want 200", got)
	}
	if code, err := extAuthzCheck(conn, "/a"); code != http.StatusOK {
		t.Errorf("ext_authz during the drain: %d (%v), want 200", code, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
	}
}
