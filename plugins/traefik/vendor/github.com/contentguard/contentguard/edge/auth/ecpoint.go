//go:build !yaegi
// +build !yaegi

package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
)

// The EC point codec, compiled: crypto/ecdsa's SEC 1 encoding, which
// checks the point. Under Yaegi v0.16.1, whose standard library predates
// it, ecpoint_yaegi.go does the same with the big.Int coordinates Go has
// deprecated; the build tags keep those calls out of every compiled
// binary (see "Interpreter" in the package comment).

// ecPublicKey makes the key at the point (x, y), coordinates of the curve's
// byte length, or fails if the point is not on the curve.
func ecPublicKey(curve elliptic.Curve, x, y []byte) (*ecdsa.PublicKey, error) {
	point := make([]byte, 0, 1+len(x)+len(y))
	point = append(append(append(point, 4), x...), y...)
	k, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, errors.New("point is not on " + curve.Params().Name)
	}
	return k, nil
}

// ecCoordinates returns the coordinates of k, size bytes each.
func ecCoordinates(k *ecdsa.PublicKey, size int) (x, y []byte, err error) {
	point, err := k.Bytes()
	if err != nil || len(point) != 1+2*size {
		return nil, nil, errors.New("EC coordinates out of range")
	}
	return point[1 : 1+size], point[1+size:], nil
}
