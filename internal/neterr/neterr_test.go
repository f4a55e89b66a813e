package neterr

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestDescribeNamesNoAddress(t *testing.T) {
	dial := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 6379},
			Err: &os.SyscallError{Syscall: "connect", Err: err}}
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{&net.DNSError{Err: "no such host", Name: "x.test", Server: "10.1.2.3:53", IsNotFound: true}, "the host name does not resolve"},
		{&net.DNSError{Err: "i/o timeout", Name: "x.test", Server: "10.1.2.3:53", IsTimeout: true}, "the host name lookup timed out"},
		{&net.DNSError{Err: "server misbehaving", Name: "x.test", Server: "10.1.2.3:53"}, "the host name lookup failed"},
		{fmt.Errorf("post: %w", context.DeadlineExceeded), "timed out"},
		{dial(syscall.ECONNREFUSED), "connection refused"},
		{dial(syscall.ECONNRESET), "connection reset"},
		{dial(syscall.EHOSTUNREACH), "host unreachable"},
		{fmt.Errorf("tls: %w", x509.UnknownAuthorityError{}), "the TLS certificate is not valid for this host"},
		{errors.New("something else at 10.1.2.3"), "the request failed"},
	} {
		got := Describe(c.err)
		if got != c.want {
			t.Errorf("Describe(%v) = %q, want %q", c.err, got, c.want)
		}
		if strings.Contains(got, "10.1.2.3") {
			t.Errorf("Describe(%v) names the address", c.err)
		}
	}
}
