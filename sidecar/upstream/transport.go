package upstream

import (
	"net"
	"net/http"
	"time"
)

// NewTransport returns the upstream transport the sidecar uses by default:
// many idle keep-alive connections per host (the upstream is usually one
// host, and a proxy that redials under load spends its time in connect and
// TIME_WAIT), bounded dial and TLS times, no environment proxy, and no
// transparent compression (bodies pass through as the upstream sent them).
// The per-request upstream timeout comes from the policy, not from here.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:           4096,
		MaxIdleConnsPerHost:    1024,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
		WriteBufferSize:        16 << 10,
		ReadBufferSize:         16 << 10,
	}
}
