package host

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestDetect(t *testing.T) {
	cases := []struct {
		flag string
		env  map[string]string
		mode Mode
		addr string
	}{
		{"", nil, ModeListen, DefaultListen},
		{"", map[string]string{"PORT": "9000"}, ModePort, ":9000"},
		{"127.0.0.1:7000", map[string]string{"PORT": "9000"}, ModeListen, "127.0.0.1:7000"},
		{"", map[string]string{"PORT": "9000", "FUNCTIONS_CUSTOMHANDLER_PORT": "7071"}, ModeAzure, "127.0.0.1:7071"},
		{"", map[string]string{"AWS_LAMBDA_FUNCTION_NAME": "fn", "PORT": "9000"}, ModeLambda, ""},
		{"0.0.0.0:1", map[string]string{"AWS_LAMBDA_FUNCTION_NAME": "fn"}, ModeLambda, ""},
	}
	for _, c := range cases {
		mode, addr := Detect(c.flag, func(k string) string { return c.env[k] })
		if mode != c.mode || addr != c.addr {
			t.Errorf("Detect(%q, %v) = %s %q, want %s %q", c.flag, c.env, mode, addr, c.mode, c.addr)
		}
	}
}

// TestGracefulShutdownFinishesInFlight cancels the serving context while a
// request is inside its handler: the request must complete with 200, new
// connections must be refused, and Serve must return nil.
func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "finished")
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, h, Options{ShutdownTimeout: 10 * time.Second}) }()

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()
	<-entered
	cancel()
	// Wait until the listener is closed (Shutdown closes it first).
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 100*time.Millisecond)
		if err != nil {
			break
		}
		c.Close()
		if i > 500 {
			t.Fatal("listener still accepting after cancel")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	r := <-got
	if r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request: %q %v", r.body, r.err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestRunReportsListenErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := Run(context.Background(), ModeListen, ln.Addr().String(), http.NotFoundHandler(), Options{}); err == nil {
		t.Fatal("listening on a taken port succeeded")
	}
}
