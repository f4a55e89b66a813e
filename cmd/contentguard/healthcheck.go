package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/contentguard/contentguard/backend/host"
)

const healthcheckHelp = `Usage: contentguard healthcheck [--timeout D] [URL...]

Asks each URL with GET and exits 0 when every one answers 2xx, 1 otherwise
(the reason on stderr). It is the container image's HEALTHCHECK and the
exec probe of a process that listens on loopback only: the image has no
shell, curl or wget, so the binary asks itself.

Without a URL it asks the backend's /health on 127.0.0.1 at $PORT (the
image sets PORT=8081), or at the port of ` + host.DefaultListen + `.
Other roles name theirs:

  contentguard healthcheck http://127.0.0.1:9901/readyz    the sidecar (admin listener)
  contentguard healthcheck http://127.0.0.1:9091/metrics   a job worker (--metrics-listen)

Flags:
`

// runHealthcheck is the `healthcheck` subcommand.
func runHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "limit on each request, connection included")
	fs.Usage = func() {
		fmt.Fprint(stdout, healthcheckHelp)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	urls := fs.Args()
	if len(urls) == 0 {
		urls = []string{defaultHealthURL(os.Getenv)}
	}
	client := &http.Client{
		Timeout: *timeout,
		// A probe asks the address it was given: a redirect elsewhere is
		// an answer, not a place to go.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
	}
	code := 0
	for _, u := range urls {
		if err := probe(ctx, client, u); err != nil {
			fmt.Fprintf(stderr, "contentguard healthcheck: %v\n", err)
			code = 1
		}
	}
	return code
}

// defaultHealthURL is the backend's /health on loopback at $PORT (what the
// backend listens on in the image), else at DefaultListen's port.
func defaultHealthURL(getenv func(string) string) string {
	port := getenv("PORT")
	if port == "" {
		_, port, _ = net.SplitHostPort(host.DefaultListen)
	}
	return "http://" + net.JoinHostPort("127.0.0.1", port) + "/health"
}

// probe GETs rawURL and wants a 2xx answer.
func probe(ctx context.Context, client *http.Client, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", rawURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("%s: %w", rawURL, err)
	}
	req.Header.Set("User-Agent", "contentguard-healthcheck")
	resp, err := client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("%s: %w", rawURL, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s: %s", rawURL, resp.Status)
	}
	return nil
}
