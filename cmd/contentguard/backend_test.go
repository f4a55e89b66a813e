package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/contentguard/contentguard/internal/syncbuf"
)

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestBackendHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"backend", "--help"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"FUNCTIONS_CUSTOMHANDLER_PORT", "AWS_LAMBDA_FUNCTION_NAME", "-listen", "-max-body-bytes", "REDIS_URL"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("help lacks %q:\n%s", want, out.String())
		}
	}
	if code := run(context.Background(), []string{"backend", "--bogus"}, &out, &errb); code != 2 {
		t.Fatalf("bad flag exit %d", code)
	}
	out.Reset()
	run(context.Background(), nil, &out, &errb)
	if !strings.Contains(out.String(), "backend") {
		t.Fatal("usage does not list backend")
	}
}

func TestBackendServesAndStopsOnCancel(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("AWS_LAMBDA_FUNCTION_NAME", "")
	t.Setenv("PORT", "1") // --listen given explicitly must win over PORT
	ctx, cancel := context.WithCancel(context.Background())
	var stdout bytes.Buffer
	stderr := &syncbuf.Buffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"backend", "--listen", "127.0.0.1:0"}, &stdout, stderr) }()
	addr := logField(t, stderr, "ready", "addr")
	resp, err := http.Post("http://"+addr+"/api/v1/analyze", "application/json", strings.NewReader(`{"content":"a b a"}`))
	if err != nil {
		t.Fatalf("backend never answered: %v\n%s", err, stderr.String())
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	logs := stderr.String()
	for _, want := range []string{`"msg":"starting backend"`, `"route":"/api/v1/analyze"`, `"request_id":`, `"msg":"backend stopped cleanly"`} {
		if !strings.Contains(logs, want) {
			t.Fatalf("logs lack %s:\n%s", want, logs)
		}
	}
}

// BenchmarkColdStart measures process start → first 200 on /health for the
// real binary (built once, outside the timer), polling every millisecond the
// way a platform health check would.
func BenchmarkColdStart(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "contentguard")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Timeout: time.Second}
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(b))
		start := time.Now()
		cmd := exec.Command(bin, "backend", "--listen", addr, "--log-level", "error")
		cmd.Env = append(os.Environ(), "REDIS_URL=", "OTEL_EXPORTER_OTLP_ENDPOINT=", "AWS_LAMBDA_FUNCTION_NAME=")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		for {
			resp, err := client.Get("http://" + addr + "/health")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Since(start) > 10*time.Second {
				b.Fatal("no 200 within 10s")
			}
			time.Sleep(time.Millisecond)
		}
		total += time.Since(start)
		b.StopTimer()
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms-to-first-200")
}

// TestBackendListensWherePlatformsSay runs the subcommand without --listen
// under the Azure Functions and Cloud Run environments.
func TestBackendListensWherePlatformsSay(t *testing.T) {
	for _, env := range []string{"FUNCTIONS_CUSTOMHANDLER_PORT", "PORT"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv("REDIS_URL", "")
			t.Setenv("AWS_LAMBDA_FUNCTION_NAME", "")
			t.Setenv("FUNCTIONS_CUSTOMHANDLER_PORT", "")
			t.Setenv("PORT", "")
			t.Setenv(env, "0") // the platform's port; 0: any free one
			ctx, cancel := context.WithCancel(context.Background())
			stderr := &syncbuf.Buffer{}
			done := make(chan int, 1)
			go func() { done <- run(ctx, []string{"backend"}, io.Discard, stderr) }()
			// Azure's custom handler listens on loopback, PORT on every
			// interface: the ready line names the address bound.
			bound := ""
			logField(t, stderr, "ready", "addr")
			for _, line := range strings.Split(stderr.String(), "\n") {
				if strings.Contains(line, `"msg":"ready"`) {
					bound = line
				}
			}
			if wantLoopback := env == "FUNCTIONS_CUSTOMHANDLER_PORT"; strings.Contains(bound, `"addr":"127.0.0.1:`) != wantLoopback {
				t.Errorf("%s: bound %s", env, bound)
			}
			resp, err := http.Get("http://" + logField(t, stderr, "ready", "addr") + "/health")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("status %d", resp.StatusCode)
				}
			}
			cancel()
			if code := <-done; err != nil || code != 0 {
				t.Fatalf("err %v exit %d\n%s", err, code, stderr.String())
			}
		})
	}
}

// TestBackendLogsStayJSONWhenRedisIsDown: with REDIS_URL naming a Redis
// that does not answer, the backend fails (its job queue needs Redis) and
// every line it wrote on the way is a JSON object — go-redis's own dial
// errors included, which its process-wide logger printed as plain text.
func TestBackendLogsStayJSONWhenRedisIsDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "backend", "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "CG_RUN_MAIN=1", fmt.Sprintf("REDIS_URL=redis://127.0.0.1:%d/0", freePort(t)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("exit %d (%v), want 1\n%s", code, err, stderr.String())
	}
	var redisLines int
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Errorf("not a JSON line: %q", line)
			continue
		}
		if msg, _ := entry["msg"].(string); strings.HasPrefix(msg, "redis: ") {
			redisLines++
		}
	}
	if redisLines == 0 {
		t.Errorf("go-redis said nothing through the logger:\n%s", stderr.String())
	}
}
