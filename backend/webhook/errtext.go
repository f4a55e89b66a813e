package webhook

import (
	"errors"

	"github.com/contentguard/contentguard/internal/neterr"
)

// Describe says why an outbound call (a webhook delivery, a registration's
// name lookup) failed, in words a client may read: the kind of failure,
// never an address, port or resolver of the network the server runs in
// (see package neterr). The full error belongs in the server's log.
func Describe(err error) string {
	if errors.Is(err, ErrForbiddenAddress) {
		return "the address is not allowed (private, loopback or reserved)"
	}
	return neterr.Describe(err)
}
