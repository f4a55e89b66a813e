//go:build yaegi
// +build yaegi

package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"math/big"
)

// The EC point codec under Yaegi v0.16.1 (the tag is set by doc.go's
// yaegi:tags line, which the interpreter reads first): its standard library
// has no ecdsa.ParseUncompressedPublicKey or PublicKey.Bytes, so the point
// is checked and encoded with the big.Int coordinates and IsOnCurve, which
// Go has deprecated. Compiled binaries use ecpoint.go; the two answer alike
// (TestUnderYaegi).

func ecPublicKey(curve elliptic.Curve, x, y []byte) (*ecdsa.PublicKey, error) {
	X := new(big.Int).SetBytes(x)
	Y := new(big.Int).SetBytes(y)
	if !curve.IsOnCurve(X, Y) {
		return nil, errors.New("point is not on " + curve.Params().Name)
	}
	return &ecdsa.PublicKey{Curve: curve, X: X, Y: Y}, nil
}

func ecCoordinates(k *ecdsa.PublicKey, size int) (x, y []byte, err error) {
	if k.X == nil || k.Y == nil || k.X.Sign() < 0 || k.Y.Sign() < 0 || k.X.BitLen() > size*8 || k.Y.BitLen() > size*8 {
		return nil, nil, errors.New("EC coordinates out of range")
	}
	return k.X.FillBytes(make([]byte, size)), k.Y.FillBytes(make([]byte, size)), nil
}
