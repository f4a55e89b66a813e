package edge

import (
	"errors"
	"net"
	"net/http"
	"os"
)

// BodyFault is the outcome of an exchange whose request body could not be
// read, by the read error, for data planes that read bodies through
// net/http: past the body's read deadline a client timeout (408), past
// maxBodyBytes (http.MaxBytesReader) 413, a broken connection (reset,
// closed under us) a client gone (nobody to answer), anything else — a bad
// chunk, fewer bytes than Content-Length, a client that half-closed
// mid-body — a malformed body (400). Every one is the client's fault.
//
// The errors it looks for are the standard library's own types, which
// errors.Is and errors.As find under Yaegi too. (One condition per case:
// Yaegi v0.16.1 tests only the first of a tagless case's comma list.)
func BodyFault(err error) Outcome {
	var tooLarge *http.MaxBytesError
	var opErr *net.OpError
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return Outcome{ClientFault: true, Timeout: true}
	case errors.As(err, &tooLarge):
		return Outcome{ClientFault: true, Status: http.StatusRequestEntityTooLarge}
	case errors.As(err, &opErr) || errors.Is(err, net.ErrClosed):
		return Outcome{ClientFault: true, Status: StatusClientClosed}
	}
	return Outcome{ClientFault: true, Status: http.StatusBadRequest}
}
